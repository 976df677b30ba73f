"""Object-store benchmark: spans/s into an S3 Delta store with 1 and with 3 collectors behind `vigil router`,
then ms per named query on that Delta store (compacted, as `vigil compact` keeps it) vs the same rows in a
local Parquet store (one file a day).

Real processes: a moto S3 server (`python -m moto.server`, loopback), N `vigil collector`s with
`[store] uri` = one bucket prefix (each its own WAL), and `vigil router` in front; the raw gRPC load
generator of bench.ingest sends pre-encoded requests to the router for --duration seconds. The
collectors are then stopped with SIGTERM (they drain every acknowledged request into Delta) and the
store is counted through the catalog. moto on loopback is not real S3 (no network latency, no request
limits, Python on the same cores), so read the figures as vigil's own overhead, not S3's. Prints
figures, asserts nothing. See bench/README.md.

    uv run python -m bench.objstore                        # 1 and 3 collectors, 15 s each
    uv run python -m bench.objstore --collectors 3 --duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from bench.ingest import REPO, CollectorProcess, build_request, print_table, run_raw
from store.catalog import connect, fetch
from store.config import Config, load_config
from store.delta import _open, compact_tables
from store.location import append_rows, table_location
from store.queries import run

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
QUERIES = ("spend_per_day", "llm_latency_by_model", "most_expensive_tasks", "task_latency", "refusal_rate")
COPIED = ("spans", "llm_calls", "llm_messages")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening on port {port}")


@contextlib.contextmanager
def moto_server(log: Path):
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
        try:
            _wait_listening(port, proc, "moto")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def store_config(work: Path, endpoint: str, uri: str) -> Config:
    store = {"data_dir": str(work), "uri": uri, "s3_endpoint_url": endpoint, "s3_allow_http": True}
    return load_config(env={}, overrides={"store": store})


def run_cluster(n: int, work: Path, endpoint: str, uri: str, payloads: list, args: argparse.Namespace) -> dict:
    store_env = {"VIGIL_STORE_URI": uri, "VIGIL_STORE_S3_ENDPOINT_URL": endpoint, "VIGIL_STORE_S3_ALLOW_HTTP": "1"}
    store_env["VIGIL_COLLECTOR_HTTP_LISTEN"] = "127.0.0.1:0"  # several collectors: no OTLP/HTTP port to share
    os.environ.update(CREDENTIALS | store_env)  # what CollectorProcess passes on to each collector
    with contextlib.ExitStack() as stack:
        collectors = []
        for i in range(n):
            (work / f"c{i}").mkdir(parents=True)
            collectors.append(stack.enter_context(CollectorProcess(work / f"c{i}" / "data", fsync=True)))
        port = _free_port()
        command = [sys.executable, "-m", "vigil", "router", "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"]
        for collector in collectors:
            command += ["--backend", f"127.0.0.1:{collector.port}"]
        router = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port, router, "vigil router")
            load = run_raw(port, payloads, args, 0.0)
        finally:
            router.terminate()
            router.wait(timeout=30)
        started = time.perf_counter()
        for collector in collectors:
            collector.proc.send_signal(15)
        for collector in collectors:
            collector.proc.wait(timeout=600)
        drain_s = time.perf_counter() - started
    con = connect(work, store_config(work, endpoint, uri))
    sql = "SELECT (SELECT count(*) FROM spans_raw) raw, (SELECT count(*) FROM spans) spans"
    counts = fetch(con, sql).to_pylist()[0]
    return {
        "collectors": n,
        "load_s": round(load.elapsed_s, 1),
        "acked_spans": load.spans,
        "acked_spans_per_s": round(load.spans / load.elapsed_s),
        "acked_spans_per_s_2nd_half": round(load.steady_rate()),
        "refused_retried": load.refused,
        "errors": load.errors,
        "drain_after_stop_s": round(drain_s, 1),
        "stored_span_rows": counts["raw"],  # every acknowledged span (a resent payload is stored again)
        "distinct_spans_in_views": counts["spans"],  # the payloads repeat: the views dedupe them
        "stored_spans_per_s_e2e": round(counts["raw"] / (load.elapsed_s + drain_s)),
    }


def copy_to_local(config: Config, local: Path) -> None:
    """The same rows as plain Parquet under `local` (timestamps in µs, as Delta keeps them), a file a day."""
    location = table_location(config.store)
    for table in COPIED:
        dt = _open(location, table)
        if dt is not None:
            append_rows(local, table, dt.to_pyarrow_table().drop_columns(["date"]))


def _delta_files(config: Config) -> dict[str, int]:
    location = table_location(config.store)
    tables = {t: _open(location, t) for t in COPIED}
    return {t: len(dt.file_uris()) for t, dt in tables.items() if dt is not None}


def time_queries(config: Config, local: Path, runs: int) -> list[dict]:
    rows = []
    for store, opened in (("delta (moto S3)", lambda: connect(config.store.data_dir, config)),
                          ("local parquet", lambda: connect(local))):  # fmt: skip
        for name in QUERIES:
            con = opened()
            began = time.perf_counter()
            got = run(con, name).num_rows
            cold = (time.perf_counter() - began) * 1000
            warm = []
            for _ in range(runs):
                began = time.perf_counter()
                run(con, name)
                warm.append((time.perf_counter() - began) * 1000)
            rows.append({"store": store, "query": name, "rows": got, "cold_ms": round(cold, 1),
                         "warm_median_ms": round(statistics.median(warm), 1)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collectors", type=int, action="append", help="collectors per run; repeat (default 1, 3)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per run (default 15)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--spans-per-request", type=int, default=512, help="spans per Export (default 512)")
    parser.add_argument("--content-bytes", type=int, default=1024, help="message text per chat span (default 1024)")
    parser.add_argument("--payloads", type=int, default=32, help="distinct pre-encoded requests (default 32)")
    parser.add_argument("--runs", type=int, default=5, help="warm runs per query (default 5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out of latency figures")
    parser.add_argument("--keep-data", action="store_true", help="keep the bucket, collector and moto logs")
    parser.add_argument("--retry-sleep", type=float, default=0.05, help="seconds before retrying a refusal")
    args = parser.parse_args(argv)
    payloads = []
    for i in range(args.payloads):
        payload, calls = build_request(5_000 + i, args.spans_per_request, args.content_bytes)
        payloads.append((payload, args.spans_per_request, calls))
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-objstore-"))
    try:
        with moto_server(work / "moto.log") as endpoint:
            os.environ.update(CREDENTIALS)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            ingest = []
            for n in args.collectors or [1, 3]:
                ingest.append(run_cluster(n, work / f"run-{n}", endpoint, f"s3://bench/run-{n}", payloads, args))
            last = ingest[-1]["collectors"]
            config = store_config(work / f"run-{last}", endpoint, f"s3://bench/run-{last}")
            copy_to_local(config, work / "local")
            files = _delta_files(config)
            compact_tables(table_location(config.store), grace_s=0)  # as `vigil compact --every` keeps it
            print(f"delta data files before compaction: {files}, after: {_delta_files(config)}", file=sys.stderr)
            queries = time_queries(config, work / "local", args.runs)
        print(f"machine: {os.cpu_count()} cores; moto, collectors, router and load generator on the same box")
        print_table(ingest)
        print(f"queries over the {last}-collector store:")
        print_table(queries)
    finally:
        if args.keep_data:
            print(f"data and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
