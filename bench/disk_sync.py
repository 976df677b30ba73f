"""How long this disk takes to make one WAL write durable, with no collector running.

Every acknowledgement waits for one write-ahead-log `fdatasync` (collector/wal.py), so the disk's
sync latency is a floor under the ack latency that no collector code can go below while it stays
durable. This writes request-sized records the way the WAL does (into a preallocated segment, so
each sync is a pure data flush), one every `--interval` seconds, and prints the distribution of
the sync times. `bench.ingest` prints the collector's own syncs from its /metrics histogram
(`wal_syncs_over_50ms_pct`); this tells whether the disk does the same with nothing else on it.
Asserts nothing.

    uv run python -m bench.disk_sync                   # 30 s of 0.8 MB writes, one every 30 ms
    uv run python -m bench.disk_sync --bytes 160000 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def measure(folder: Path, duration_s: float, record_bytes: int, interval_s: float) -> list[float]:
    """Milliseconds per write + fdatasync, in the order they ran."""
    segment = folder / "segment.wal"
    size = 64 << 20
    with open(segment, "wb") as handle:  # written once and synced: later syncs touch no metadata
        handle.write(b"\0" * size)
        os.fsync(handle.fileno())
    record = os.urandom(record_bytes)
    fd = os.open(segment, os.O_WRONLY)
    times, offset = [], 0
    try:
        stop = time.monotonic() + duration_s
        while time.monotonic() < stop:
            began = time.perf_counter()
            os.pwrite(fd, record, offset)
            os.fdatasync(fd)
            times.append((time.perf_counter() - began) * 1000)
            offset = (offset + record_bytes) % (size - record_bytes)
            time.sleep(interval_s)
    finally:
        os.close(fd)
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def quantile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "syncs": len(ordered),
        "p50_ms": quantile(0.5),
        "p90_ms": quantile(0.9),
        "p99_ms": quantile(0.99),
        "max_ms": round(ordered[-1], 1),
        "over_50ms_pct": round(100 * sum(t > 50 for t in ordered) / len(ordered), 2),
        "stalled_ms_total": round(sum(t for t in ordered if t > 50)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30, help="seconds (default 30)")
    parser.add_argument("--bytes", type=int, default=800_000, help="bytes per write: one 512-span request (default)")
    parser.add_argument("--interval", type=float, default=0.03, help="seconds between writes (default 0.03)")
    parser.add_argument("--dir", help="a folder on the disk to test (default: the system temp folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vigil-disk-sync-", dir=args.dir) as folder:
        figures = summary(measure(Path(folder), args.duration, args.bytes, args.interval))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:20} {value:>10,}")


if __name__ == "__main__":
    main()
