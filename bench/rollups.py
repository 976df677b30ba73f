"""Rollup build benchmark: time and peak memory of building a big store's rollups, whole or a slice at a time.

Builds (or reuses, bench.queries.ensure_store) a store of N LLM calls over a few days, so each date's neighbourhood
(D-1..D+1, what a rollup reads) is big, and builds its rollups (store.rollup_build) in a new process per setting, as
the collector's compaction thread does: one DuckDB thread, store.rollup_build.MEMORY_LIMIT unless --memory-limit.
Each setting starts from a hard-linked copy of the store without rollups. Prints, per setting, the wall and CPU
seconds, the peak RSS of the process (interpreter and imports included) and the most slices of a date. Asserts nothing;
see bench/README.md.

    uv run python -m bench.rollups             # 6,000,000 calls over 3 days, 16 MiB slices
    uv run python -m bench.rollups --slice-mb 16,8 --memory-limit 128MB,256MB
    uv run python -m bench.rollups --slice-mb 0 --memory-limit 2GB      # a date whole, in 2 GB
    uv run python -m bench.rollups --phases    # and the peak RSS of each phase
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.queries import ensure_store
from collector import memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=6_000_000, help="LLM calls in the store (default 6,000,000)")
    parser.add_argument("--days", type=int, default=3, help="days the calls spread over (default 3)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vigil-bench"), help="where stores are built and kept")
    parser.add_argument(
        "--slice-mb",
        default="16",
        help="comma-separated Parquet MiB per slice to try; 0: a date whole (needs --memory-limit 2GB; default 16)",
    )
    parser.add_argument(
        "--memory-limit", default="", help="comma-separated DuckDB memory limits to try (default: ours)"
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also print the peak RSS and seconds of each phase (split, tasks, calls, facts)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON settings: build in this process
    args = parser.parse_args(argv)
    if args.child:
        return _build(**json.loads(args.child))
    root = ensure_store(args.dir, args.calls, args.days, 0, False)
    print(f"\n## rollups of {args.calls:,} LLM calls over {args.days} days ({root})")
    print(f"{'slice MiB':>9} {'memory limit':>12} {'dates':>5} {'slices':>6} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>7}")
    for limit in [m for m in args.memory_limit.split(",") if m] or [""]:
        for mib in (int(m) for m in args.slice_mb.split(",")):
            figures = _run(root, mib, limit, args.phases)
            print(_row(figures, mib, limit), flush=True)
            for phase, (peak, seconds) in figures.get("phases", {}).items():
                print(f"{'':>9} {phase:>12} peak RSS {peak:>5.0f} MiB in {seconds:>6.1f} s")
    return 0


def _run(root: Path, slice_mib: int, memory_limit: str, phases: bool) -> dict:
    copy = root.parent / f"{root.name}-rollup-bench"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root, copy, copy_function=os.link, ignore=shutil.ignore_patterns("rollups"))
    # every date sealed: the store's last dates are rolled up too
    end = datetime.fromisoformat(json.loads((root / "bench-store.json").read_text())["end"])
    settings = {
        "root": str(copy),
        "today": str((end + timedelta(days=3)).date()),
        "slice_mib": slice_mib,
        "memory_limit": memory_limit,
        "phases": phases,
    }
    memory.choose_arrow_pool()  # inherited by the child, as the collector's processes get it from `vigil`
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.rollups", "--child", json.dumps(settings)], stdout=subprocess.PIPE, text=True
    )
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    shutil.rmtree(copy)
    if status:
        raise SystemExit(f"the build failed (status {status}); its error is above")
    return {
        **json.loads(out),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def _build(root: str, today: str, slice_mib: int, memory_limit: str, phases: bool) -> int:
    from store import rollup_build

    memory.limit_retention()  # the allocators as in the collector, whose compaction thread builds rollups
    memory.without_pandas()
    if memory_limit:
        rollup_build.MEMORY_LIMIT = memory_limit
    sampler = _PhaseSampler(rollup_build) if phases else None
    slice_bytes = slice_mib << 20 if slice_mib else 1 << 62
    built = rollup_build.build_rollups(
        Path(root), today=datetime.fromisoformat(today).date(), slice_input_bytes=slice_bytes
    )
    figures = {"dates": len(built), "slices": max((r.slices for r in built), default=0)}
    print(json.dumps(figures | ({"phases": sampler.stop()} if sampler else {})))
    return 0


class _PhaseSampler:
    """Samples this process's RSS every 20 ms, by phase: store.rollup_build's split of input files, and its writes of
    each rollup kind (a sliced kind's write includes its slices' queries and the copy of their parts)."""

    def __init__(self, rollup_build) -> None:
        self.phase, self.peaks, self.seconds = "start", {}, {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        split, write = rollup_build.split_file, rollup_build._write

        def timed(phase_of, fn):
            def wrapper(*args, **kwargs):
                self.phase, started = phase_of(*args), time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + time.perf_counter() - started
                    self.phase = "between"

            return wrapper

        rollup_build.split_file = timed(lambda *_: "split", split)
        rollup_build._write = timed(lambda path, *_: path.parts[-3], write)  # <kind>/date=D/<name>

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as statm:
            while not self.done.wait(0.02):
                statm.seek(0)
                rss = int(statm.read().split()[1]) * page / (1 << 20)
                self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)

    def stop(self) -> dict[str, tuple[float, float]]:
        self.done.set()
        self.thread.join()
        return {phase: (peak, self.seconds.get(phase, 0.0)) for phase, peak in self.peaks.items()}


def _row(figures: dict, slice_mib: int, limit: str) -> str:
    return (
        f"{slice_mib or 'whole':>9} {limit or 'default':>12} {figures['dates']:>5} {figures['slices']:>6} "
        f"{figures['wall_s']:>7.1f} {figures['cpu_s']:>7.1f} {figures['peak_rss_mib']:>7.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
