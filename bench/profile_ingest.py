"""Where the collector's CPU goes, per span and per stage, measured in CPU time (not wall clock).

Runs every step a traced request takes through the collector, in this one process, on a fixed
set of pre-encoded requests (the same ones `bench.ingest` sends), and prints CPU µs per span of
each: parse, validate, redaction (the Export handler's), read (a decode worker's pass over the
bytes: `collector._otlp_wire` when built), normalize, the rest of decode_traces (row building and
the Arrow tables), Arrow IPC to and from a decode worker, pricing, the Parquet write
and the WAL append; then the same decode through a real pool of two worker processes (`pool_*`:
what handing requests to other processes adds, which the in-process stages do not show). CPU time
(`time.process_time`, all threads of this process) is what a busy machine cannot inflate the way
it inflates wall-clock figures, so before/after comparisons made here hold while other work
shares the cores. Then a cProfile top-N of the whole path. Asserts nothing.

    uv run python -m bench.profile_ingest                        # ~1 KiB content per chat span
    uv run python -m bench.profile_ingest --content-bytes 10240  # 10 KiB spans
    uv run python -m bench.profile_ingest --top 40 --json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.ingest import _cpu_s, build_request
from collector import memory
from collector.decode_pool import DecodePool
from collector.decode_traces import _otlp_wire, decode_traces, read_payload, validate_traces
from collector.normalize import SpanFacts, normalize_llm_call
from collector.redaction import Redactor
from collector.shared_tables import from_ipc, to_ipc
from collector.signals import TRACES
from collector.wal import WriteAheadLog
from store.config import PricingConfig, RedactionConfig
from store.pricing import Pricer
from store.writer import write_partitioned


def cpu_us(step: Callable[[], Any], spans: int, repeat: int) -> tuple[float, Any]:
    """Best of `repeat` runs of `step`, in CPU µs per span (the best run has the least interference)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        began = time.process_time()
        out = step()
        best = min(best, time.process_time() - began)
    return best * 1e6 / spans, out


def pool_cpu_us(payloads: list[bytes], spans: int, repeat: int, pricer: Pricer) -> tuple[float, float]:
    """Decode through a real `DecodePool` of 2 worker processes, as the collector does: (the workers',
    this process's) CPU µs per span, best of `repeat`. What they cost over the in-process stages is
    the hand-off between processes (pickling, pipes, page faults) and two decodes sharing the cores."""
    pool = DecodePool(2, pricer)
    workers = list(pool._executor._processes)  # noqa: SLF001 - a benchmark reading its own pool's pids
    best = (float("inf"), float("inf"))
    try:
        for _ in range(repeat):
            before, began = sum(map(_cpu_s, workers)), time.process_time()
            for future in [pool.submit(TRACES.wal_kind, p, time.time_ns()) for p in payloads]:
                [from_ipc(data) for data in future.result().values()]
            here = time.process_time() - began
            best = min(best, (sum(map(_cpu_s, workers)) - before, here))
    finally:
        pool.close()
    return best[0] * 1e6 / spans, best[1] * 1e6 / spans


def span_inputs(resources: list[list[tuple]]) -> list[tuple[Any, SpanFacts]]:
    """(attributes, SpanFacts) per span, read once, so normalize can be timed on its own."""
    return [
        (span[8], SpanFacts(span[4], "client", "unset", "", scope_name, []))
        for request in resources
        for _, scopes in request
        for scope_name, _, spans in scopes
        for span in spans
    ]


def measure(payloads: list[bytes], spans: int, repeat: int, tmp: Path) -> dict[str, float]:
    now = time.time_ns()
    stage: dict[str, float] = {}
    stage["parse"], requests = cpu_us(lambda: [TRACES.request_type.FromString(p) for p in payloads], spans, repeat)
    stage["validate"], _ = cpu_us(lambda: [validate_traces(r) for r in requests], spans, repeat)
    redactor = Redactor(RedactionConfig())  # the default rules, on as in the collector
    pairs = list(zip(requests, payloads, strict=True))
    stage["redaction"], _ = cpu_us(lambda: [redactor.redact_request(r, p) for r, p in pairs], spans, repeat)
    stage["read"], resources = cpu_us(lambda: [read_payload(p) for p in payloads], spans, repeat)
    inputs = span_inputs(resources)
    stage["normalize"], _ = cpu_us(lambda: [normalize_llm_call(a, f) for a, f in inputs], spans, repeat)
    decoded, tables = cpu_us(lambda: [decode_traces(r, now) for r in resources], spans, repeat)
    stage["rows_and_arrow"] = decoded - stage["normalize"]
    stage["decode_traces_total"] = stage["read"] + decoded
    ipc = [{name: to_ipc(t) for name, t in decoded.items()} for decoded in tables]
    stage["arrow_ipc"], _ = cpu_us(
        lambda: [{n: from_ipc(to_ipc(t)) for n, t in decoded.items()} for decoded in tables], spans, repeat
    )
    merged = {name: pa.concat_tables([from_ipc(d[name]) for d in ipc]) for name in ipc[0]}
    pricer = Pricer.from_config(PricingConfig())
    stage["pool_decode_workers"], stage["pool_main_process"] = pool_cpu_us(payloads, spans, repeat, pricer)
    stage["pricing"], priced = cpu_us(lambda: pricer.price_table(merged["llm_calls"]), spans, repeat)
    merged["llm_calls"] = priced
    stage["parquet_write"], _ = cpu_us(
        lambda: [write_partitioned(tmp / "store", n, t, tag="x") for n, t in merged.items()], spans, repeat
    )
    wal = WriteAheadLog(tmp / "wal", fsync=True)
    wal.start()
    stage["wal_append"], _ = cpu_us(lambda: [wal.append(TRACES.wal_kind, p) for p in payloads], spans, repeat)
    wal.close()
    # Where each runs: the Export handler parses, validates and logs; a decode worker reads the
    # bytes again, decodes and prices; Arrow IPC is paid on both sides; the pipeline thread writes Parquet.
    # pool_*: the same decode through real worker processes; sum_with_pool counts those instead of
    # the in-process decode and IPC stages (what the collector pays; sum_all is the work alone).
    handler = ("parse", "validate", "redaction", "wal_append")
    stage["sum_main_process"] = sum(stage[k] for k in (*handler, "arrow_ipc", "parquet_write"))
    stage["sum_decode_worker"] = stage["decode_traces_total"] + stage["pricing"]
    stage["sum_all"] = stage["sum_main_process"] + stage["sum_decode_worker"]
    main = sum(stage[k] for k in (*handler, "parquet_write"))
    stage["sum_with_pool"] = main + stage["pool_main_process"] + stage["pool_decode_workers"]
    return {k: round(v, 2) for k, v in stage.items()}


def profile(payloads: list[bytes], tmp: Path, top: int) -> str:
    """cProfile of parse → validate → decode → price → write, sorted by own time."""
    pricer = Pricer.from_config(PricingConfig())
    profiler = cProfile.Profile()
    profiler.enable()
    for payload in payloads:
        validate_traces(TRACES.request_type.FromString(payload))
        tables = TRACES.decode_serialized(payload, time.time_ns())
        tables["llm_calls"] = pricer.price_table(tables["llm_calls"])
        for name, table in tables.items():
            write_partitioned(tmp / "profiled", name, table, tag="p")
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payloads", type=int, default=8, help="distinct pre-encoded requests (default 8)")
    parser.add_argument("--spans-per-request", type=int, default=512, help="spans per request (default 512)")
    parser.add_argument("--content-bytes", type=int, default=1024, help="message text per chat span (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage; the best counts (default 3)")
    parser.add_argument("--top", type=int, default=25, help="functions in the profile (default 25)")
    parser.add_argument("--no-profile", action="store_true", help="stage figures only")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    parser.add_argument(
        "--allocators",
        choices=["collector", "default"],
        default="collector",
        help="collector: the allocator settings the collector's processes run with (collector.memory); "
        "default: Python's and pyarrow's own (to see what those settings cost)",
    )
    args = parser.parse_args(argv)
    if args.allocators == "collector":
        memory.limit_retention()

    built = [build_request(1_000 + i, args.spans_per_request, args.content_bytes) for i in range(args.payloads)]
    payloads = [payload for payload, _ in built]
    spans = len(payloads) * args.spans_per_request
    size = sum(map(len, payloads)) / spans
    TRACES.decode_serialized(payloads[0], time.time_ns())  # lazy imports, caches
    with tempfile.TemporaryDirectory(prefix="vigil-profile-") as tmp:
        stage = measure(payloads, spans, args.repeat, Path(tmp))
        report = None if args.no_profile else profile(payloads, Path(tmp), args.top)
    reader = "compiled collector._otlp_wire" if _otlp_wire else "protobuf runtime (collector._otlp_wire not built)"
    print(f"{spans:,} spans in {len(payloads)} requests, {size:,.0f} B/span of OTLP, read by the {reader}")
    print(f"CPU µs per span (best of {args.repeat}):")
    for name, value in stage.items():
        print(f"  {name:<22}{value:>10.2f}")
    rate = 1e6 / stage["sum_with_pool"] if stage["sum_with_pool"] else 0
    print(f"  => one core does ~{rate:,.0f} spans/s of collector work ({rate * size / 1e6:.1f} MB/s of OTLP)")
    if report:
        print(report)
    if args.json:
        print(json.dumps({"args": vars(args), "bytes_per_span": round(size), "cpu_us_per_span": stage}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
