"""The `vigil` command: thin wrappers that turn flags into a Config and call into the wings."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from store.config import ConfigError, load_config

logger = logging.getLogger("vigil")

_DATA_DIR_HELP = "folder of the Parquet store and write-ahead log (env VIGIL_STORE_DATA_DIR; default ./vigil-data)"


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
    _common(collector)
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
    _common(query)
    query.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format")
    query.add_argument("--max-rows", type=int, default=100, help="rows shown by --format table (default 100)")
    query.add_argument("sql", help="the SQL to run")
    query.set_defaults(run=_run_query)

    compact = commands.add_parser(
        "compact",
        help="merge small Parquet files and drop duplicate rows now",
        description="Merge small Parquet files (the collector also does this in the background).",
    )
    _common(compact)
    compact.add_argument("--min-files", type=int, help="merge a partition from this many small files on (default 8)")
    compact.set_defaults(run=_run_compact)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    parser.add_argument("--config", metavar="FILE", help="TOML config file (sections [collector], [store])")


def _load(args: argparse.Namespace, collector: dict[str, Any] | None = None):
    return load_config(
        args.config,
        overrides={"store": {"data_dir": args.data_dir}, "collector": collector or {}},
    )


def _run_collector(args: argparse.Namespace) -> int:
    from collector.server import Collector

    config = _load(
        args, {"grpc_listen": args.grpc_listen, "http_listen": args.http_listen, "log_level": args.log_level}
    )
    logging.basicConfig(
        level=config.collector.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    with Collector(config) as collector:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: collector.stop())
        grpc_host = config.collector.grpc_listen.rsplit(":", 1)[0]
        http_host = config.collector.http_listen.rsplit(":", 1)[0]
        print(
            f"vigil collector: OTLP/gRPC on {grpc_host}:{collector.grpc_port}, "
            f"OTLP/HTTP on http://{http_host}:{collector.http_port}\n"
            f"  data in {Path(config.store.data_dir).resolve()}\n"
            f"  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc_host}:{collector.grpc_port}  (Ctrl-C to stop)",
            flush=True,
        )
        collector.wait()
    return 0


def _run_query(args: argparse.Namespace) -> int:
    import duckdb

    from store.catalog import connect, fetch

    config = _load(args)
    root = Path(config.store.data_dir)
    if not root.is_dir():
        raise ConfigError(f"no store at {root}; start `vigil collector --data-dir {root}` first or fix --data-dir")
    con = connect(root)
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
        json.dump(rows, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        writer.writerows([row.values() for row in rows])
    return 0


def _run_compact(args: argparse.Namespace) -> int:
    from store.compaction import compact

    config = _load(args)
    root = Path(config.store.data_dir)
    if not root.is_dir():
        raise ConfigError(f"no store at {root}; fix --data-dir")
    results = compact(
        root, args.min_files or config.store.compaction_min_files, grace_s=config.store.compaction_grace_s
    )
    for r in results:
        print(f"{r.table}/{r.partition}: {r.files_in} files → 1, {r.rows_out} rows, {r.bytes_in} → {r.bytes_out} bytes")
    if not results:
        print("nothing to compact")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
