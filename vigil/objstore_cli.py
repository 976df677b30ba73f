"""`vigil router` (trace-id routing in front of several collectors) and `vigil compact` on Delta tables."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable

from store.config import Config, ConfigError, parse_listen

logger = logging.getLogger("vigil")


def add_commands(commands: argparse._SubParsersAction) -> None:
    router = commands.add_parser(
        "router",
        help="split OTLP/gRPC requests by trace id over several vigil collectors",
        description="Receive OTLP/gRPC and forward each request's spans to one of the --backend collectors "
        "by trace id (every span of a trace to the same one); log records by trace id, metrics by resource. "
        "Answers a client only after every backend acknowledged its part. In production the OpenTelemetry "
        "Collector's loadbalancing exporter does the same job: see deploy/otelcol-loadbalancing.yaml.",
    )
    router.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:4317", help="default 127.0.0.1:4317")
    router.add_argument(
        "--backend", metavar="HOST:PORT", action="append", required=True, help="a collector's OTLP/gRPC address; repeat"
    )
    router.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO")
    router.set_defaults(run=_run_router)


def add_compact_arguments(compact: argparse.ArgumentParser) -> None:
    compact.add_argument(
        "--every",
        metavar="SECONDS",
        type=float,
        help="keep running and compact again every SECONDS (the one compaction job of a Delta store; "
        "there it also applies [retention] every retention.interval_s)",
    )


def _retention_schedule(args: argparse.Namespace, config: Config) -> Callable[[], None]:
    """What `vigil compact --every` runs before each pass: retention when `retention.interval_s` has passed."""
    from store.delta_retention import apply_delta_retention
    from store.location import table_location

    interval = config.retention.interval_s
    last = [float("-inf")]

    def retain() -> None:
        if not args.every or interval <= 0 or time.monotonic() - last[0] < interval:
            return
        last[0] = time.monotonic()
        for r in apply_delta_retention(table_location(config.store), config.retention):
            print(f"retention {r.table}/{r.partition}: deleted rows of {r.files_deleted + r.files_rewritten} files "
                  f"{'(projects ' + ', '.join(p or '<none>' for p in r.projects) + ')' if r.projects else ''}",
                  flush=True)  # fmt: skip

    return retain


def _run_router(args: argparse.Namespace) -> int:
    from collector.router import serve_router

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for backend in args.backend:
        parse_listen(backend, "--backend")
    host, port = parse_listen(args.listen, "--listen")
    try:
        server, router, bound = serve_router(f"{host}:{port}", args.backend)
    except OSError as exc:
        raise ConfigError(f"{exc}; pick another with --listen HOST:PORT") from None
    print(f"vigil router: OTLP/gRPC on {host}:{bound} → {', '.join(args.backend)}", flush=True)
    stop = threading.Event()
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(5).wait()
    router.close()
    return 0


def run_compact(args: argparse.Namespace, config: Config, compact_parquet: Callable[[], int]) -> int:
    """Once, or every `--every` seconds until Ctrl-C: Delta optimize + vacuum, or the Parquet compaction.
    With `--every` on Delta, also `[retention]` every `retention.interval_s` (the collectors do not run it)."""
    if config.store.uri:
        from store.delta import compact_tables
        from store.location import table_location

        location = table_location(config.store)
        retain = _retention_schedule(args, config)

        def once() -> int:
            retain()
            for r in compact_tables(location, config.store.compaction_grace_s):
                print(
                    f"{r.table}: {r.files_removed} files merged into {r.files_added}, "
                    f"{r.files_vacuumed} replaced files deleted, now version {r.version}",
                    flush=True,
                )
            return 0
    else:
        once = compact_parquet
    stop = threading.Event()
    while True:
        try:
            once()
            if not args.every or stop.wait(args.every):
                return 0
        except KeyboardInterrupt:
            return 0
