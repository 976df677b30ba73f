"""The collector process: WAL recovery, the gRPC server and the pipeline, started and stopped in order.

`Collector(config)` is a context manager: entering it replays what the write-ahead log holds
beyond the last checkpoint, starts the pipeline and binds the OTLP/gRPC listener (port 0 picks a
free one; `grpc_port` tells which). Leaving it stops accepting, lets in-flight Exports finish,
writes every acknowledged request to Parquet and checkpoints the log, so a clean shutdown leaves
nothing to replay.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import ssl
import threading
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collector import memory
from collector.auth import Authenticator
from collector.compiled import compiled_modules, stale_modules
from collector.http_server import HttpFrontEnd
from collector.instance import instance_id
from collector.pipeline import Pipeline
from collector.redaction import Redactor
from collector.selfmetrics import Counters, prometheus_text
from collector.service import Ingest, grpc_handlers
from collector.signals import SIGNALS
from collector.wal import WalRecord, WriteAheadLog
from store.compaction import compact
from store.config import CollectorConfig, Config, ConfigError, parse_listen
from store.keys import KeyRing, keys_path
from store.location import open_sink, table_location
from store.outcomes import record_verdicts
from store.pricing import Pricer
from store.retention import apply_retention
from store.rollup_build import build_rollups
from store.writer import remove_stale_temp_files

logger = logging.getLogger(__name__)


class Collector:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = Path(config.store.data_dir)
        self.counters = Counters()
        self.grpc_port = 0
        self.http_port = 0
        self._server: grpc.Server | None = None
        self._http: HttpFrontEnd | None = None
        self._health = health.HealthServicer()
        self._stopped = threading.Event()
        self._maintenance = threading.Lock()  # compaction and retention take turns

    def __enter__(self) -> Collector:
        cfg = self.config.collector
        memory.limit_retention()  # before any thread starts: see collector.memory
        _log_compiled()
        pricer = Pricer.from_config(self.config.pricing)  # first: a bad price file stops start-up cleanly
        auth = self._authenticator()
        redactor = Redactor(self.config.redaction) if self.config.redaction.enabled else None
        if redactor is not None:
            self.counters.add(**{f"redacted_{name}": 0 for name in redactor.names})
        tls = _read_tls(cfg.tls_cert_file, cfg.tls_key_file)
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.root)  # one collector per data dir: no one else is mid-write
        self.wal = WriteAheadLog(self.root / "wal", cfg.wal_segment_mib << 20, fsync=cfg.wal_fsync)
        self.location = table_location(self.config.store)
        self.sink = open_sink(self.location, instance_id(self.root / "wal"))
        try:
            self.pipeline = self._pipeline(pricer)
        except OSError as exc:  # the store cannot tell what it holds: replaying blind could store rows twice
            raise ConfigError(
                f"cannot read the tables at {self.location.describe()}: {exc}. Check that the bucket exists and "
                "[store] uri, s3_endpoint_url, s3_region and the AWS_* credentials; the write-ahead log keeps "
                "every acknowledged request until then"
            ) from None
        # Records logged by a vigil without redaction (or with other rules) are redacted on the way in.
        replayed = self.pipeline.replay(_sanitized(record, redactor) for record in self.wal.recover())
        if replayed:
            logger.info("recovered requests=%d from the write-ahead log", replayed)
        self.wal.start()
        self.pipeline.start()
        ingest = Ingest(self.wal, self.pipeline, self.counters, auth, redactor)
        self._start_grpc(ingest, tls)
        self._start_http(ingest, tls)
        if cfg.metrics_log_interval_s > 0:
            threading.Thread(target=self._log_metrics, name="selfmetrics", daemon=True).start()
        if self.location.is_delta:
            # Delta tables are compacted by one job (`vigil compact --every`), not by every collector: optimizers
            # racing for the same files waste their work, and vacuum needs a single owner.
            logger.info(
                "tables are Delta tables at %s; compaction and retention run in `vigil compact`", self.location.uri
            )
        elif self.config.store.compaction_interval_s > 0:
            threading.Thread(target=self._compact_periodically, name="compaction", daemon=True).start()
        if self.config.retention.interval_s > 0 and not self.location.is_delta:
            threading.Thread(target=self._retain_periodically, name="retention", daemon=True).start()
        return self

    def _pipeline(self, pricer: Pricer) -> Pipeline:
        cfg = self.config.collector
        return Pipeline(
            self.root,
            self.wal,
            self.counters,
            max_queue_bytes=cfg.max_queue_mib << 20,
            flush_interval_s=cfg.flush_interval_s,
            flush_max_rows=cfg.flush_max_rows,
            max_buffer_bytes=cfg.flush_max_mib << 20,
            pricer=pricer,
            decode_workers=cfg.decode_workers,
            quality=self.config.quality,
            sink=self.sink,
        )

    def _authenticator(self) -> Authenticator:
        """Keys when `[auth] enabled`; refuse to serve a non-loopback address without them."""
        auth, cfg = self.config.auth, self.config.collector
        if auth.enabled:
            keys = KeyRing(keys_path(self.config))
            if not len(keys):
                logger.warning(
                    "auth is enabled but %s holds no active key: every Export is refused until you run "
                    "`vigil keys create --project NAME`",
                    keys.path,
                )
            return Authenticator(keys)
        exposed = [a for a in (cfg.grpc_listen, cfg.http_listen) if not _is_loopback(a)]
        if exposed and not auth.allow_unauthenticated:
            raise ConfigError(
                f"refusing to listen on {', '.join(exposed)} without authentication: anyone who can reach it "
                "could write into your store. Turn on [auth] enabled = true (env VIGIL_AUTH_ENABLED=1) and "
                "create keys with `vigil keys create --project NAME`, listen on 127.0.0.1, "
                "or pass --allow-unauthenticated if a trusted network or proxy guards it"
            )
        return Authenticator(None)

    def _start_grpc(self, ingest: Ingest, tls: tuple[bytes, bytes] | None) -> None:
        cfg = self.config.collector
        max_bytes = cfg.max_message_mib << 20
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="otlp-grpc"),
            handlers=grpc_handlers(ingest),
            options=[
                ("grpc.max_receive_message_length", max_bytes),
                ("grpc.max_send_message_length", 4 << 20),
                ("grpc.so_reuseport", 0),
                # No window growth by bandwidth probing: with it, 32 senders of 5 MB requests pushed
                # their bodies into the transport's buffers ahead of admission (collector + workers:
                # 693 MB PSS, 485 without). A request being read still gets its whole length announced.
                ("grpc.http2.bdp_probe", 0),
            ],
            maximum_concurrent_rpcs=cfg.workers * 8,
        )
        host, port = parse_listen(cfg.grpc_listen, "collector.grpc_listen")
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if tls is None:
                self.grpc_port = self._server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
                self.grpc_port = self._server.add_secure_port(address, credentials)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            raise ConfigError(
                f"cannot listen on {cfg.grpc_listen}: is another collector running? "
                "Pick another port with --grpc-listen HOST:PORT"
            )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        for service in ["", *(signal.grpc_service for signal in SIGNALS.values())]:
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server.start()
        logger.info(
            "otlp grpc listening address=%s:%d tls=%s auth=%s data_dir=%s",
            host, self.grpc_port, tls is not None, ingest.auth.enabled, self.root,
        )  # fmt: skip

    def _start_http(self, ingest: Ingest, tls: tuple[bytes, bytes] | None) -> None:
        cfg = self.config.collector
        host, port = parse_listen(cfg.http_listen, "collector.http_listen")
        try:
            self._http = HttpFrontEnd(
                host,
                port,
                ingest,
                cfg.max_message_mib << 20,
                self.readiness,
                self.metrics_text,
                lambda rows: record_verdicts(self.location, rows),
                _ssl_context(self.config.collector) if tls is not None else None,
                exports_at_once=cfg.workers,  # as many as gRPC's handler threads
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {cfg.http_listen} ({exc.strerror}): pick another port with --http-listen HOST:PORT"
            ) from None
        self.http_port = self._http.port
        self._http.start()
        logger.info("otlp http listening address=%s:%d", host, self.http_port)

    def readiness(self) -> str:
        """'' when an Export would be stored right now, else why not (for /readyz).

        Decided by a probe write as large as the last write that failed, not by the log's last
        error alone: once that much space is back the probe passes, so a balancer that waits for
        ready lets through the write that clears the error.
        """
        probe = self.wal.directory / ".readyz"
        size = min(max(self.wal.last_error_bytes, 4096), 64 << 20)
        try:
            with open(probe, "wb") as handle:
                handle.write(bytes(size))
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            probe.unlink(missing_ok=True)
            problem = self.wal.last_error or f"store at {self.root} is not writable: {exc.strerror}"
            return f"{problem}; free space or fix permissions"
        return ""

    def metrics_text(self) -> str:
        values = self.counters.snapshot() | {"wal_bytes": self.wal.disk_bytes}
        return prometheus_text(values, {"wal_sync_seconds": self.wal.sync_seconds})

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self, grace_s: float = 5.0) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._health.enter_graceful_shutdown()
        if self._http is not None:
            self._http.stop()
        if self._server is not None:
            self._server.stop(grace_s).wait()
        self.pipeline.close()
        self.wal.close()
        logger.info("collector stopped %s", self.counters.log_line())

    def wait(self) -> None:
        # Wake up now and then: a signal the kernel hands to another thread only runs its Python
        # handler once the main thread gets to run bytecode, which a wait without timeout never does.
        while not self._stopped.wait(0.5):
            pass

    def _compact_periodically(self) -> None:
        store = self.config.store
        # Exports first: compaction (DuckDB with one thread runs on this one) takes the CPU they
        # leave, and catches up when the load drops. A nice of 10 still gets ~10% of a busy core.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while not self._stopped.wait(store.compaction_interval_s):
            try:
                with self._maintenance:
                    results = compact(self.root, store.compaction_min_files, grace_s=store.compaction_grace_s)
                    built = build_rollups(self.root, self.config) if store.rollups else []
                self.counters.add(
                    compactions=len(results), compacted_files=sum(r.files_in for r in results), rollups=len(built)
                )
            except Exception:  # compaction is an optimisation: log, keep ingesting, try again later
                if self._stopped.is_set():  # DuckDB's query interrupted by the stop signal: nothing failed
                    return
                logger.exception("compaction failed; will retry")
                self.counters.add(compaction_errors=1)

    def _retain_periodically(self) -> None:
        # First run soon after start-up (a collector restarted daily would otherwise never get to it).
        delay = min(60.0, self.config.retention.interval_s)
        while not self._stopped.wait(delay):
            delay = self.config.retention.interval_s
            try:
                with self._maintenance:
                    removed = apply_retention(self.root, self.config.retention)
                self.counters.add(retention_runs=1, retention_deleted_files=sum(r.files_deleted for r in removed))
            except Exception:  # like compaction: log, keep ingesting, try again next round
                logger.exception("retention failed; will retry")
                self.counters.add(retention_errors=1)

    def _log_metrics(self) -> None:
        interval = self.config.collector.metrics_log_interval_s
        while not self._stopped.wait(interval):
            logger.info("selfmetrics %s", self.counters.log_line({"wal_bytes": self.wal.disk_bytes}))


def _is_loopback(listen: str) -> bool:
    host, _ = parse_listen(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _log_compiled() -> None:
    compiled = compiled_modules()
    logger.info("modules compiled by mypyc=%d", len(compiled))
    stale = stale_modules(compiled)
    if stale:
        logger.warning(
            "compiled modules older than their source, so the old code runs: %s. Rebuild them with `uv sync` "
            "(or `VIGIL_PURE_PYTHON=1 uv sync` to run the sources as they are)",
            ", ".join(stale),
        )


def _read_tls(cert_file: str, key_file: str) -> tuple[bytes, bytes] | None:
    """(certificate chain, private key) PEM bytes, or None without TLS; bad files stop start-up."""
    if not cert_file:
        return None
    try:
        pair = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use TLS certificate {cert_file} with key {key_file}: {exc}; "
            "pass PEM files with --tls-cert/--tls-key"
        ) from None
    return pair


def _ssl_context(cfg: CollectorConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
    return context


def _sanitized(record: WalRecord, redactor: Redactor | None) -> WalRecord:
    signal = SIGNALS.get(record.kind)
    if redactor is None or signal is None or not redactor.may_match(record.payload):
        return record
    try:
        request = signal.request_type.FromString(record.payload)
    except DecodeError:  # the decoder will quarantine it
        return record
    if not redactor.redact_request(request, record.payload):
        return record
    return WalRecord(record.seq, record.kind, request.SerializeToString())
