"""The `vigil` command: thin wrappers that turn flags into a Config and call into the wings."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from store.config import Config, ConfigError, load_config
from vigil import alerts_cli, objstore_cli, quality_cli, replay_cli, security_cli, sim_cli
from vigil.options import add_store_arguments, existing_store, json_default, load, parse_when, progress

logger = logging.getLogger("vigil")


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        sys.exit(2)
    try:
        sys.exit(args.run(args) or 0)
    except ConfigError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil", description="Observability and replay analytics for LLM agents, OTLP-native."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    collector = commands.add_parser(
        "collector",
        help="receive OTLP traces and store them as Parquet",
        description="Run the OTLP/gRPC collector. Point OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT at it.",
    )
    add_store_arguments(collector)
    collector.add_argument(
        "--grpc-listen",
        metavar="HOST:PORT",
        help="OTLP/gRPC address (default 127.0.0.1:4317; 0 = any free port)",
    )
    collector.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help="OTLP/HTTP address, also /healthz /readyz /metrics (default 127.0.0.1:4318)",
    )
    collector.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    collector.set_defaults(run=_run_collector)

    query = commands.add_parser(
        "query",
        help="run DuckDB SQL over the store",
        description="Run DuckDB SQL over the views spans, llm_calls and tasks.",
        epilog='example: vigil query "SELECT request_model, sum(input_tokens) FROM llm_calls GROUP BY 1"',
    )
    add_store_arguments(query)
    query.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    query.add_argument("--max-rows", type=int, default=100, help="rows shown by --format table (default 100)")
    query.add_argument("sql", help="the SQL to run")
    query.set_defaults(run=_run_query)

    outcome = commands.add_parser(
        "outcome",
        help="record a task verdict (user feedback, a downstream check)",
        description="Record a verdict for the task of TRACE_ID. The latest verdict wins; every one is kept.",
    )
    add_store_arguments(outcome)
    outcome.add_argument("trace_id", help="the task's trace id (32 hex characters)")
    outcome.add_argument("outcome", choices=["success", "failure"])
    outcome.add_argument("--score", type=float, help="a score to keep with the verdict")
    outcome.add_argument("--comment", help="why")
    outcome.add_argument("--source", default="cli", help="who judged (default: cli)")
    outcome.add_argument("--project", help="judge the trace only if it belongs to this project (default: any)")
    outcome.set_defaults(run=_run_outcome)

    report = commands.add_parser(
        "report",
        help="print a metric report",
        description="Cost per successful task and friends, from the same named queries the dashboards use.",
    )
    add_store_arguments(report)
    report.add_argument("report", choices=["cost"], help="which report")
    report.add_argument("--since", metavar="AGE|DATE", help="start of the window: 7d, 12h, 30m, 2w or 2026-11-01")
    report.add_argument("--until", metavar="AGE|DATE", help="end of the window (default: now)")
    report.add_argument("--by", choices=[g for g in _groups() if g != "all"], help="one row per group")
    report.add_argument("--format", choices=["table", "json"], default="table")
    report.set_defaults(run=_run_report)

    compact = commands.add_parser(
        "compact",
        help="merge small files and drop duplicate rows now, then build the rollups of sealed dates",
        description="Merge small Parquet files and build the per-date rollups of dates before yesterday "
        "([store] rollups; the collector also does both in the background). On a Delta store ([store] uri) run "
        "it as the one compaction job: Delta optimize.compact() then vacuum of files replaced more than "
        "[store] compaction_grace_s ago (rounded up to whole hours).",
    )
    add_store_arguments(compact)
    compact.add_argument("--min-files", type=int, help="merge a partition from this many small files on (default 8)")
    objstore_cli.add_compact_arguments(compact)
    compact.set_defaults(run=_run_compact)

    reprice = commands.add_parser(
        "reprice",
        help="recompute the cost of stored LLM calls with the current prices",
        description="Recompute cost_usd of every stored LLM call from the bundled price table and your price file "
        "([pricing] overrides_file), rewriting each file in place. Costs the instrumentation reported are kept.",
    )
    add_store_arguments(reprice)
    reprice.add_argument("--prices", metavar="FILE", help="price file to use instead of [pricing] overrides_file")
    reprice.set_defaults(run=_run_reprice)

    up = commands.add_parser(
        "up",
        help="start the collector and the dashboards, with a demo dataset",
        description="Start the collector and the dashboards in one process tree. With --demo (the default) an empty "
        "store gets two weeks of demo agent traffic (see sample_data/demo/README.md) and a live trace every few "
        "seconds, and a simulated OpenAI-compatible model server answers on --sim-llm-listen. Ctrl-C stops everything.",
    )
    add_store_arguments(up)
    up.add_argument("--grpc-listen", metavar="HOST:PORT", help="OTLP/gRPC address (default 127.0.0.1:4317)")
    up.add_argument("--http-listen", metavar="HOST:PORT", help="OTLP/HTTP address (default 127.0.0.1:4318)")
    up.add_argument("--dashboards-port", type=int, default=8501, metavar="PORT", help="dashboards port on 127.0.0.1")
    up.add_argument(
        "--demo", action=argparse.BooleanOptionalAction, default=True, help="load the demo into an empty store"
    )
    up.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sim_cli.add_up_arguments(up)
    up.set_defaults(run=_run_up)

    dashboards = commands.add_parser(
        "dashboards",
        help="start only the dashboards over a store",
        description="Start the Streamlit dashboards on 127.0.0.1 over the store in --data-dir.",
    )
    add_store_arguments(dashboards)
    dashboards.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    dashboards.set_defaults(run=_run_dashboards)
    replay_cli.add_commands(commands)
    quality_cli.add_commands(commands)
    alerts_cli.add_commands(commands)
    sim_cli.add_commands(commands)
    security_cli.add_commands(commands)
    objstore_cli.add_commands(commands)
    return parser


def _serving_config(args: argparse.Namespace) -> Config:
    """Config for a command that runs the collector (listen flags), with logging set up from it."""
    security = security_cli.serving_overrides(args)
    config = load(
        args,
        {"grpc_listen": args.grpc_listen, "http_listen": args.http_listen, "log_level": args.log_level}
        | security["collector"],
        auth=security["auth"],
    )
    logging.basicConfig(
        level=config.collector.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return config


def _run_collector(args: argparse.Namespace) -> int:
    from collector.memory import without_pandas
    from collector.server import Collector

    config = _serving_config(args)  # first: a config refused here leaves the process as it was
    without_pandas()  # a process of its own: ~40 MB less (see collector.memory)
    with Collector(config) as collector:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: collector.stop())
        grpc_host = config.collector.grpc_listen.rsplit(":", 1)[0]
        http_host = config.collector.http_listen.rsplit(":", 1)[0]
        scheme = "https" if config.collector.tls_cert_file else "http"
        print(
            f"vigil collector: OTLP/gRPC on {grpc_host}:{collector.grpc_port}, "
            f"OTLP/HTTP on {scheme}://{http_host}:{collector.http_port}\n"
            f"  data in {Path(config.store.data_dir).resolve()}\n"
            f"  export OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://{grpc_host}:{collector.grpc_port}  (Ctrl-C to stop)",
            flush=True,
        )
        collector.wait()
    return 0


def _run_up(args: argparse.Namespace) -> int:
    from vigil.up import run_up

    config = _serving_config(args)
    return run_up(config, args.config, args.dashboards_port, args.demo, args.sim_llm_listen)


def _run_dashboards(args: argparse.Namespace) -> int:
    from vigil.up import run_dashboards

    return run_dashboards(Path(load(args).store.data_dir), args.port, args.config)


def _run_query(args: argparse.Namespace) -> int:
    import duckdb

    from store.catalog import connect, fetch

    config = load(args)
    root = existing_store(config)
    con = connect(root, config)
    try:
        table = fetch(con, args.sql)
        if table is None:  # a statement without a result (SET, CREATE ...)
            return 0
    except duckdb.Error as exc:
        print(f"vigil query: {exc}", file=sys.stderr)
        return 1
    if args.format == "table":
        con.from_arrow(table).show(max_rows=args.max_rows, max_width=200)
        return 0
    rows = table.to_pylist()
    if args.format == "json":
        json.dump(rows, sys.stdout, default=json_default)
        sys.stdout.write("\n")
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        writer.writerows([row.values() for row in rows])
    return 0


def _groups() -> list[str]:
    from store.queries import GROUPS

    return list(GROUPS)


def _run_outcome(args: argparse.Namespace) -> int:
    from store.outcomes import VerdictError, record_verdicts, verdict_row

    config = load(args)
    try:
        row = verdict_row(args.trace_id, args.outcome, args.score, args.comment, args.source, project=args.project)
    except VerdictError as exc:
        raise ConfigError(str(exc)) from None
    record_verdicts(config.store, [row])
    print(f"recorded {args.outcome} for trace {row['trace_id']}")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from store.catalog import connect
    from store.queries import run

    config = load(args)
    root = existing_store(config)
    now = datetime.now(UTC)
    since, until = parse_when(args.since, now, "--since"), parse_when(args.until, now, "--until")
    table = run(connect(root, config), "cost_per_successful_task", group=args.by or "all", since=since, until=until)
    rows = table.to_pylist()
    if not args.by:
        rows = [{k: v for k, v in row.items() if k != "group"} for row in rows] or [{"tasks": 0}]
    if args.format == "json":
        json.dump(rows if args.by else rows[0], sys.stdout, default=json_default)
        sys.stdout.write("\n")
        return 0
    import duckdb

    duckdb.from_arrow(table if args.by else table.drop_columns(["group"])).show(max_width=200)
    return 0


def _run_compact(args: argparse.Namespace) -> int:
    config = load(args)
    return objstore_cli.run_compact(args, config, lambda: _compact_parquet(args, config))  # Delta, or this


def _compact_parquet(args: argparse.Namespace, config: Config) -> int:
    from store.compaction import compact

    root = existing_store(config)
    results = compact(
        root, args.min_files or config.store.compaction_min_files, grace_s=config.store.compaction_grace_s
    )
    for r in results:
        print(f"{r.table}/{r.partition}: {r.files_in} files → 1, {r.rows_out} rows, {r.bytes_in} → {r.bytes_out} bytes")
    if not results:
        print("nothing to compact")
    if config.store.rollups:
        from store.rollup_build import build_rollups

        built = build_rollups(root, config, progress=progress("rollups {done}/{total} dates"))
        print(f"rollups: {len(built)} dates built" if built else "rollups: up to date")
    return 0


def _run_reprice(args: argparse.Namespace) -> int:
    from store.pricing import Pricer
    from store.reprice import reprice_store

    config = load_config(
        args.config, overrides={"store": {"data_dir": args.data_dir}, "pricing": {"overrides_file": args.prices}}
    )
    where = config.store if config.store.uri else existing_store(config)  # a uri: Delta, day by day
    unit = "days" if config.store.uri else "files"
    summary = reprice_store(where, Pricer.from_config(config.pricing), progress(f"repriced {{done}}/{{total}} {unit}"))
    share = summary.unpriced / summary.calls if summary.calls else 0.0
    sources = ", ".join(f"{source} {n}" for source, n in sorted(summary.by_source.items())) or "none"
    print(
        f"repriced {summary.calls} calls in {summary.files} {unit}: {summary.changed} changed "
        f"({summary.rewritten} {unit} rewritten), {summary.unpriced} unpriced ({share:.1%}); by source: {sources}"
    )
    return 0
