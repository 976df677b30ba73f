"""Query benchmark: every named query in store/queries, timed over a generated store.

Builds (or reuses) a store of N LLM calls with bench.store_gen, opens it with store.catalog.connect
and times each named query (whatever `store.queries.names()` finds at run time) with its default
parameters (all time), and with a last-7-days and a last-day window where it takes $since; the
trace queries look up a real trace id. "cold" is the first run on a fresh connection (the OS page
cache may still hold the files), "warm" the median of --runs more; "warm CPU" is the process CPU
time of a warm run (all DuckDB threads), the figure to trust on a machine others are loading.
Prints a table and the peak RSS; asserts nothing. See bench/README.md.

    uv run python -m bench.queries                       # 1x: 1,000,000 calls in 200,000 tasks
    uv run python -m bench.queries --calls 10000000      # the issue-11 size
    uv run python -m bench.queries --base 100000 --scales 1,10,100   # growth with data volume
    uv run python -m bench.queries --fresh-files 8       # last day left un-compacted (8 files + 1% resent)
    uv run python -m bench.queries --rollups             # over a hard-linked copy with rollups built (store.rollups)
    uv run python -m bench.queries --rollups --memo      # ... and the live days kept in memory, as the dashboards do
    uv run python -m bench.queries --rollups --processes # each query once in a new process, as a one-off CLI query
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.store_gen import build_store
from store.catalog import connect
from store.queries import load, names, run
from store.rollup_build import build_rollups
from store.rollups import enable_memo

WINDOWS = {"all": None, "7d": timedelta(days=7), "1d": timedelta(days=1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000, help="LLM calls in the store (default 1,000,000)")
    parser.add_argument("--base", type=int, help="with --scales: calls at scale 1")
    parser.add_argument("--scales", default="", help="comma-separated scale factors of --base, e.g. 1,10,100")
    parser.add_argument("--days", type=int, default=30, help="days the tasks spread over (default 30)")
    parser.add_argument("--fresh-files", type=int, default=0, help="leave the last day as this many un-compacted files")
    parser.add_argument("--runs", type=int, default=3, help="warm runs per query; the median is shown (default 3)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/vigil-bench"), help="where stores are built and kept")
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if it exists")
    parser.add_argument("--only", default="", help="comma-separated query names to time (default: all)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, one per core)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON lines too")
    parser.add_argument(
        "--memo",
        action="store_true",
        help="keep the live dates' rows in memory between runs, as the dashboards' connection does (store.rollups)",
    )
    parser.add_argument(
        "--rollups",
        action="store_true",
        help="query a hard-linked copy of the store (in DIR-rollups/) with the rollups of its sealed dates built",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="instead: run each query once in a new process (interpreter start, imports, connect, query), as a "
        "one-off CLI query pays it",
    )
    args = parser.parse_args(argv)
    sizes = [args.base * int(s) for s in args.scales.split(",")] if args.scales else [args.calls]
    for calls in sizes:
        root = ensure_store(args.dir, calls, args.days, args.fresh_files, args.rebuild)
        root = with_rollups(root) if args.rollups else root
        only = [n for n in args.only.split(",") if n]
        print(f"\n## {calls:,} LLM calls ({root})")
        if args.processes:
            rows = time_processes(root, only)
            print_process_table(rows)
        else:
            rows = time_queries(root, args.runs, only, args.threads, args.memo)
            print_table(rows)
        if args.json:
            for row in rows:
                print(json.dumps({"calls": calls, **row}))
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def ensure_store(base: Path, calls: int, days: int, fresh_files: int, rebuild: bool) -> Path:
    """The store for this size, built once and reused (its end is pinned in a marker file)."""
    root = base / f"calls-{calls}-days-{days}-fresh-{fresh_files}"
    marker = root / "bench-store.json"
    if marker.exists() and not rebuild:
        return root
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    print(f"building a store of {calls:,} LLM calls in {root} ...", file=sys.stderr)
    built = build_store(root, calls, days=days, fresh_last_day=fresh_files)
    marker.write_text(json.dumps({**built.__dict__, "end": datetime.now(UTC).isoformat()}))
    print(f"built in {time.perf_counter() - started:.0f} s: {built}", file=sys.stderr)
    return root


def with_rollups(root: Path) -> Path:
    """A copy of `root` (hard links: store files are never changed in place) with the rollups its collector would
    have built by now: every date before yesterday, as of the store's end. The shared store is left as it is."""
    copy = root.parent.with_name(root.parent.name + "-rollups") / root.name
    if not copy.exists():
        shutil.copytree(root, copy, copy_function=os.link)
    end = datetime.fromisoformat(json.loads((root / "bench-store.json").read_text())["end"])
    started = time.perf_counter()
    built = build_rollups(copy, today=end.date(), progress=_progress)
    if built:
        print(f"built {len(built)} rollups in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return copy


def _progress(done: int, total: int) -> None:
    print(f"\rrollups {done}/{total}", end="\n" if done == total else "", file=sys.stderr)


def time_queries(root: Path, runs: int, only: list[str], threads: int | None = None, memo: bool = False) -> list[dict]:
    return [
        {"query": name, "window": window, **_time(root, name, params, runs, threads, memo)}
        for name, window, params in _cases(root, only)
    ]


def _cases(root: Path, only: list[str]) -> list[tuple[str, str, dict]]:
    """(query, window, parameters) for every query timed: all time, 7 d and 1 d where it takes $since, or a trace."""
    con = connect(root)
    trace_id = con.execute("SELECT trace_id FROM spans_raw USING SAMPLE 1 ROWS").fetchall()[0][0]
    end = con.execute("SELECT max(start_time) FROM spans_raw").fetchall()[0][0]
    con.close()
    cases = []
    for name in only or names():
        sql = load(name)
        windows = ["trace"] if "$trace_id" in sql else (list(WINDOWS) if "$since" in sql else ["all"])
        for window in windows:
            params = {"trace_id": trace_id} if window == "trace" else {}
            if WINDOWS.get(window):
                params["since"] = end - WINDOWS[window]
            cases.append((name, window, params))
    return cases


# One query in a new process, timed inside it (after the interpreter started) and from outside (all of it).
_ONE_OFF = """
import json, sys, time
started = time.perf_counter()
from datetime import datetime
from pathlib import Path
from store.catalog import connect
from store.queries import run
imported = time.perf_counter()
con = connect(Path(sys.argv[1]))
connected = time.perf_counter()
params = {k: datetime.fromisoformat(v) if k == "since" else v for k, v in json.loads(sys.argv[3]).items()}
rows = run(con, sys.argv[2], **params).num_rows
done = time.perf_counter()
print(json.dumps({"rows": rows, "import_ms": (imported - started) * 1000, "connect_ms": (connected - imported) * 1000,
                  "query_ms": (done - connected) * 1000}))
"""


def time_processes(root: Path, only: list[str]) -> list[dict]:
    rows = []
    for name, window, params in _cases(root, only):
        encoded = json.dumps({k: v.isoformat() if k == "since" else v for k, v in params.items()})
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _ONE_OFF, str(root), name, encoded], capture_output=True, text=True, check=True
        )
        process_ms = (time.perf_counter() - started) * 1000
        figures = json.loads(done.stdout.splitlines()[-1])  # the last line: DuckDB may print a progress bar first
        rows.append({"query": name, "window": window, "process_ms": process_ms, **figures})
    return rows


def _time(root: Path, name: str, params: dict, runs: int, threads: int | None, memo: bool) -> dict:
    con = connect(root)  # a fresh connection: nothing cached from the previous query
    if memo:  # the first run builds it: "cold" includes that
        enable_memo(con)
    if threads:
        con.execute(f"SET threads = {threads}")
    timings, cpu = [], []
    for _ in range(runs + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run(con, name, **params)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    con.close()
    return {
        "rows": result.num_rows,
        "cold_ms": round(timings[0], 1),
        "warm_ms": round(statistics.median(timings[1:]), 1),
        "warm_cpu_ms": round(statistics.median(cpu[1:]), 1),
    }


def print_table(rows: list[dict]) -> None:
    print(f"| {'query':<30} | window | {'rows':>7} | cold ms | warm ms | warm CPU ms |")
    print(f"|{'-' * 32}|--------|{'-' * 9}|---------|---------|-------------|")
    for r in rows:
        print(
            f"| {r['query']:<30} | {r['window']:<6} | {r['rows']:>7} | {r['cold_ms']:>7.0f} | {r['warm_ms']:>7.0f} "
            f"| {r['warm_cpu_ms']:>11.0f} |"
        )


def print_process_table(rows: list[dict]) -> None:
    print(f"| {'query':<30} | window |    rows | process ms | import ms | connect ms | query ms |")
    print(f"|{'-' * 32}|--------|{'-' * 9}|------------|-----------|------------|----------|")
    for r in rows:
        print(
            f"| {r['query']:<30} | {r['window']:<6} | {r['rows']:>7} | {r['process_ms']:>10.0f} "
            f"| {r['import_ms']:>9.0f} | {r['connect_ms']:>10.0f} | {r['query_ms']:>8.0f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
