"""Ingest benchmark: how many realistic LLM spans per second the collector acknowledges and stores.

Starts `vigil collector` as a separate process (so its RSS and CPU are its own), sends pre-encoded
OTLP ExportTraceServiceRequests over raw gRPC (or, with --http, OTLP/HTTP protobuf POSTs) from
concurrent threads (or, with --sdk, spans made by the real OTel SDK + OTLP exporter), stops the
collector with SIGTERM and counts the rows that reached Parquet with DuckDB. Prints figures,
asserts nothing. See bench/README.md.

    uv run python -m bench.ingest                    # max rate for 20 s, WAL fsync on
    uv run python -m bench.ingest --compare-fsync    # fsync on vs off, two rows
    uv run python -m bench.ingest --rate-fraction 0.5  # max run, then paced at half of it
    uv run python -m bench.ingest --http             # OTLP/HTTP to :4318's /v1/traces instead
    uv run python -m bench.ingest --sdk [--http]     # through the OTel SDK exporter
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.attributes import encode_attributes

REPO = Path(__file__).resolve().parents[1]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
HTTP_RETRYABLE = (429, 502, 503, 504)  # the OTLP/HTTP spec's retryable statuses
SPANS_PER_TRACE = 8  # an invoke_agent root span + 7 chat calls, like an agent task
RESOURCE = {"service.name": "bench-agent", "vigil.project": "bench", "telemetry.sdk.language": "python"}
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-agent", "session.id": "s-1"}
CHAT_SCOPE = ("opentelemetry.util.genai.handler", "1.1b0")
MODELS = [("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("gpt-4o", "gpt-4o-2024-08-06"), ("gpt-4.1", "gpt-4.1-2025-04-14")]
_VOCAB = ["".join(random.Random(i).choices("etaoinshrdlucmfwyp", k=2 + i % 9)) for i in range(3000)]
_SYSTEM = [" ".join(random.Random(-i).choices(_VOCAB, k=400)) for i in range(4)]  # agents reuse a few


def text(rng: random.Random, nbytes: int) -> str:
    words = rng.choices(_VOCAB, k=max(nbytes // 6, 1))
    return " ".join(words)[:nbytes]


def chat_attributes(rng: random.Random, content_bytes: int) -> dict[str, Any]:
    """OTel GenAI (semconv ≈1.37, opentelemetry-instrumentation-openai-v2 with span content) chat span."""
    request_model, response_model = rng.choice(MODELS)
    system = [{"role": "system", "parts": [{"type": "text", "content": rng.choice(_SYSTEM)[: content_bytes // 4]}]}]
    user = [{"role": "user", "parts": [{"type": "text", "content": text(rng, content_bytes * 5 // 12)}]}]
    out = {"role": "assistant", "parts": [{"type": "text", "content": text(rng, content_bytes // 3)}]}
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": request_model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": f"chatcmpl-{rng.randbytes(12).hex()}",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": rng.randint(200, 4000),
        "gen_ai.usage.output_tokens": rng.randint(20, 800),
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.input.messages": json.dumps(system + user),
        "gen_ai.output.messages": json.dumps([out | {"finish_reason": "stop"}]),
    }


def build_request(seed: int, spans: int, content_bytes: int) -> tuple[bytes, int]:
    """One encoded request of `spans` spans with fresh random ids; returns (payload, LLM calls in it)."""
    rng = random.Random(seed)
    agents = ScopeSpans(scope=InstrumentationScope(name="bench.agent"))
    chats = ScopeSpans(scope=InstrumentationScope(name=CHAT_SCOPE[0], version=CHAT_SCOPE[1]))
    start, calls = time.time_ns() - 60_000_000_000, 0
    for first in range(0, spans, SPANS_PER_TRACE):
        trace_id, root_id, n = rng.randbytes(16), rng.randbytes(8), min(SPANS_PER_TRACE, spans - first)
        agents.spans.append(
            Span(
                trace_id=trace_id,
                span_id=root_id,
                name="invoke_agent support-agent",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start,
                end_time_unix_nano=start + n * 1_500_000_000,
                attributes=encode_attributes(AGENT),
            )
        )
        for i in range(1, n):
            attrs = chat_attributes(rng, content_bytes)
            t = start + i * 1_500_000_000
            chats.spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=rng.randbytes(8),
                    parent_span_id=root_id,
                    name=f"chat {attrs['gen_ai.request.model']}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=t,
                    end_time_unix_nano=t + 1_400_000_000,
                    attributes=encode_attributes(attrs),
                )
            )
            calls += 1
    resource = ResourceSpans(resource=Resource(attributes=encode_attributes(RESOURCE)), scope_spans=[agents, chats])
    return ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString(), calls


def trace_id_offsets(payload: bytes) -> list[int]:
    """Where the bytes of each span's trace_id sit in `payload` (field 1 of a Span: tag 0x0a, length 16)."""
    request = ExportTraceServiceRequest.FromString(payload)
    trace_ids = {s.trace_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    offsets, at = [], payload.find(b"\x0a\x10")
    while at >= 0:
        if payload[at + 2 : at + 18] in trace_ids:
            offsets.append(at + 2)
        at = payload.find(b"\x0a\x10", at + 1)
    return offsets


def with_fresh_trace_ids(payload: bytes, offsets: list[int], send: int) -> bytes:
    """`payload` with the send's number in the first 4 bytes of every trace_id: a resent request is new
    data, as real traffic is, so compaction keeps every row (it drops repeated span ids as resends)."""
    data, stamp = bytearray(payload), (send + 1).to_bytes(4, "little")
    for at in offsets:
        data[at : at + 4] = stamp
    return bytes(data)


def _cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a worker that just exited
        return 0.0
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(all CPU time, the part the hypervisor gave to others: steal) of this machine, in ticks."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[7]


def _kb_fields(path: str, names: tuple[str, ...]) -> dict[str, float] | None:
    """The `Name:  N kB` lines of a /proc file, in MB; None when the process is gone."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in names:
            found[name] = int(value.split()[0]) / 1024
    return found


def _pss_mb(pid: int) -> tuple[float, float]:
    """(proportional set size, its file-backed part: libraries, page cache) in MB. PSS splits shared
    library pages between the processes that map them, so a sum over the collector and its workers
    does not count pyarrow's libraries three times."""
    found = _kb_fields(f"/proc/{pid}/smaps_rollup", ("Pss", "Pss_Anon", "Pss_Shmem")) or {}
    pss = found.get("Pss", 0.0)
    return pss, pss - found.get("Pss_Anon", 0.0) - found.get("Pss_Shmem", 0.0)


def _private_mb(pid: int) -> float:
    """Resident anonymous and shared memory (/dev/shm files mapped), whole (cheap: /proc/PID/status, not a
    page-table walk)."""
    found = _kb_fields(f"/proc/{pid}/status", ("RssAnon", "RssShmem")) or {}
    return found.get("RssAnon", 0.0) + found.get("RssShmem", 0.0)


def _free_port() -> int:
    with socket.socket() as probe:  # bind 0, close, hand the port to the collector
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CollectorProcess:
    """`vigil collector` in its own process; samples its RSS (VmRSS/VmHWM) and CPU time from /proc."""

    def __init__(self, data_dir: Path, fsync: bool) -> None:
        self.data_dir, self.fsync = data_dir, fsync
        self.rss_peak_mb = self.rss_sum_mb = self.total_pss_peak_mb = 0.0
        self.samples = 0
        self._pids: list[int] = []  # the collector and its workers, as last listed
        self._file_mb: dict[int, float] = {}  # file-backed PSS per process, as last read

    def __enter__(self) -> CollectorProcess:
        self.port, self.http_port = _free_port(), _free_port()
        env = os.environ | {"VIGIL_COLLECTOR_WAL_FSYNC": str(self.fsync), "VIGIL_COLLECTOR_METRICS_LOG_INTERVAL_S": "0"}
        self.log = open(self.data_dir.parent / "collector.log", "wb")  # noqa: SIM115 - closed in __exit__
        cmd = [sys.executable, "-m", "vigil", "collector", "--data-dir", str(self.data_dir)]
        cmd += ["--grpc-listen", f"127.0.0.1:{self.port}", "--http-listen", f"127.0.0.1:{self.http_port}"]
        cmd += ["--log-level", "WARNING"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.log.close()
            tail = (self.data_dir.parent / "collector.log").read_text()[-2000:]
            raise SystemExit(f"collector did not start listening on port {self.port}:\n{tail}")
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        while self.proc.poll() is None:
            try:
                status = Path(f"/proc/{self.proc.pid}/status").read_text()
            except OSError:
                return
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if "VmRSS" not in fields:  # exiting: the memory is gone already
                return
            rss_mb = int(fields["VmRSS"].split()[0]) / 1024
            self.rss_peak_mb = max(self.rss_peak_mb, int(fields["VmHWM"].split()[0]) / 1024, rss_mb)
            self.rss_sum_mb, self.samples = self.rss_sum_mb + rss_mb, self.samples + 1
            self.total_pss_peak_mb = max(self.total_pss_peak_mb, self._total_pss_mb())
            time.sleep(0.1)

    def _total_pss_mb(self) -> float:
        """PSS of the collector and its workers. Reading smaps_rollup walks every page table: 8 ms of CPU
        for a 300 MB process, and at the ~10 Hz the peak chase used to read it, 0.06 of the 0.10 cores
        this process took from the collector's two. So PSS is read every 2 s, for the file-backed part,
        which hardly moves; each sample adds to that each process's resident anonymous memory (never
        shared: the processes are exec'd, not forked) and its mapped /dev/shm files counted whole (an
        upper bound while the collector and a worker map the same one)."""
        if self.samples % 20 == 1 or not self._pids:
            self._pids = [self.proc.pid, *self.worker_pids()]
            exact = {pid: _pss_mb(pid) for pid in self._pids}
            self._file_mb = {pid: file_backed for pid, (_, file_backed) in exact.items()}
            return sum(pss for pss, _ in exact.values())
        return sum(_private_mb(pid) + self._file_mb.get(pid, 0.0) for pid in self._pids)

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def worker_pids(self) -> list[int]:
        """The decode worker processes: the collector's children."""
        children = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            try:
                children += task.read_text().split()
            except OSError:  # a thread that just ended
                continue
        return [int(pid) for pid in children]

    def workers_cpu_s(self) -> float:
        return sum(_cpu_s(pid) for pid in self.worker_pids())

    def wal_syncs(self) -> dict[str, Any]:
        """The WAL's fdatasync times from the collector's /metrics histogram: the disk's share of
        the ack latency (every ack waits for one). The p99 is the upper bound of its bucket."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - loopback
        buckets = re.findall(r'^vigil_wal_sync_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.MULTILINE)
        total = int(buckets[-1][1]) if buckets else 0
        if not total:
            return {"wal_syncs": 0}
        over = total - next(int(n) for le, n in buckets if le == "0.05")
        p99 = next(le for le, n in buckets if int(n) >= 0.99 * total)
        return {
            "wal_syncs": total,
            "wal_syncs_over_50ms_pct": round(100 * over / total, 2),
            "wal_sync_p99_ms_at_most": "inf" if p99 == "+Inf" else round(float(p99) * 1000),
        }

    def stop(self) -> float:
        """SIGTERM, then wait while it writes everything acknowledged; returns the drain seconds."""
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        return time.perf_counter() - started

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@dataclass
class Load:
    # (ack time, ms of the attempt that was acked, ms since the first attempt or the paced slot, spans, bytes)
    acks: list[tuple[float, float, float, int, int]] = field(default_factory=list)
    requests: int = 0
    spans: int = 0
    calls: int = 0
    otlp_bytes: int = 0
    refused: int = 0
    errors: int = 0
    start: float = 0.0
    elapsed_s: float = 0.0
    warmup_s: float = 0.0

    def steady_rate(self, column: int = 3) -> float:
        """Spans/s (or bytes/s, column 4) acknowledged in the second half of the run, once the ingest
        queue has filled."""
        mid = self.start + self.elapsed_s / 2
        return sum(ack[column] for ack in self.acks if ack[0] >= mid) / (self.elapsed_s / 2)

    def percentiles(self, column: int) -> dict[str, float | None]:
        settled = self.start + self.warmup_s  # the first requests pay for lazy imports and cold caches
        ms = sorted(ack[column] for ack in self.acks if ack[0] - ack[column] / 1000 >= settled)
        if not ms:  # --sdk: the exporter's calls are not timed here
            return dict.fromkeys(("p50", "p99", "max"))
        pick = {"p50": ms[len(ms) // 2], "p99": ms[min(int(len(ms) * 0.99), len(ms) - 1)], "max": ms[-1]}
        return {k: round(v, 1) for k, v in pick.items()}


class Refused(Exception):
    """The collector asked the client to retry later (RESOURCE_EXHAUSTED / UNAVAILABLE, 429 / 503)."""


class GrpcSender:
    def __init__(self, port: int) -> None:
        options = [("grpc.max_send_message_length", 256 << 20), ("grpc.use_local_subchannel_pool", 1)]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
        self._export = self._channel.unary_unary(EXPORT, None, ExportTraceServiceResponse.FromString)

    def send(self, payload: bytes) -> None:
        try:
            self._export(payload, timeout=60)
        except grpc.RpcError as exc:
            if exc.code() in RETRYABLE:
                raise Refused from exc
            raise RuntimeError(f"{exc.code()} {exc.details()}") from exc

    def close(self) -> None:
        self._channel.close()


class HttpSender:
    """One kept-alive HTTP/1.1 connection, as the SDK's exporter (a requests Session) keeps one."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self, payload: bytes) -> None:
        headers = {"Content-Type": "application/x-protobuf"}
        try:
            self._connection.request("POST", "/v1/traces", body=payload, headers=headers)
            response = self._connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()  # the next request connects again, as the SDK's session does
            raise
        if response.status in HTTP_RETRYABLE:
            raise Refused
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} {body[:200]!r}")

    def close(self) -> None:
        self._connection.close()


def run_raw(
    collector: CollectorProcess,
    payloads: list[tuple[bytes, int, int]],
    args: argparse.Namespace,
    rate: float,
    fresh_ids: bool = False,
) -> Load:
    """C threads send payloads round-robin until --duration; paced at `rate` spans/s when > 0.
    `fresh_ids`: every send gets trace ids no other send had (~0.2 ms per request, in the sender)."""
    lock, order = threading.Lock(), itertools.count()
    offsets = [trace_id_offsets(payload) if fresh_ids else [] for payload, _, _ in payloads]
    interval = args.spans_per_request / rate if rate else 0.0  # seconds between request slots
    start = time.perf_counter() + 0.2
    total = Load(start=start, warmup_s=args.warmup)
    stop = start + args.duration

    def worker() -> None:
        mine = Load()
        sender = HttpSender(collector.http_port) if args.http else GrpcSender(collector.port)
        try:
            while True:
                k = next(order)
                due = start + k * interval
                if (due if rate else time.perf_counter()) >= stop:
                    break
                time.sleep(max(due - time.perf_counter(), 0))
                payload, spans, calls = payloads[k % len(payloads)]
                if fresh_ids:
                    payload = with_fresh_trace_ids(payload, offsets[k % len(payloads)], k)
                # Paced: the wait counts from the scheduled slot, so a late sender is not flattered.
                first = due if rate else time.perf_counter()
                while True:
                    sent = time.perf_counter()
                    try:
                        sender.send(payload)
                    except Refused:
                        if time.perf_counter() < stop + 60:
                            mine.refused += 1
                            time.sleep(args.retry_sleep)
                            continue
                        mine.errors += 1
                        break
                    except (RuntimeError, OSError, http.client.HTTPException) as exc:
                        mine.errors += 1
                        print(f"export failed: {exc}", file=sys.stderr)
                        break
                    acked = time.perf_counter()
                    mine.acks.append((acked, (acked - sent) * 1000, (acked - first) * 1000, spans, len(payload)))
                    mine.requests, mine.spans, mine.calls = mine.requests + 1, mine.spans + spans, mine.calls + calls
                    mine.otlp_bytes += len(payload)
                    break
        finally:
            sender.close()
        with lock:
            for name in ("acks", "requests", "spans", "calls", "otlp_bytes", "refused", "errors"):
                setattr(total, name, getattr(total, name) + getattr(mine, name))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total.elapsed_s = time.perf_counter() - start
    return total


def run_sdk(collector: CollectorProcess, args: argparse.Namespace) -> Load:
    """Agent tasks made with the OTel SDK in one thread; BatchSpanProcessor → OTLPSpanExporter (gRPC or HTTP)."""
    from opentelemetry.sdk.resources import Resource as SdkResource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(resource=SdkResource.create(RESOURCE))
    if args.http:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter: Any = HttpExporter(endpoint=f"http://127.0.0.1:{collector.http_port}/v1/traces")
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.port}", insecure=True)
    batch = args.spans_per_request
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=batch * 16, max_export_batch_size=batch, schedule_delay_millis=200)
    )
    agent_tracer, chat_tracer = provider.get_tracer("bench.agent"), provider.get_tracer(*CHAT_SCOPE)
    rng = random.Random(7)
    pool = [chat_attributes(rng, args.content_bytes) for _ in range(512)]
    load = Load(start=time.perf_counter())
    while time.perf_counter() < load.start + args.duration:
        with agent_tracer.start_as_current_span("invoke_agent support-agent", attributes=AGENT):
            for _ in range(SPANS_PER_TRACE - 1):
                attrs = pool[load.spans % len(pool)]
                name = f"chat {attrs['gen_ai.request.model']}"
                with chat_tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attrs):
                    load.spans, load.calls = load.spans + 1, load.calls + 1
        load.spans += 1
    provider.force_flush(timeout_millis=120_000)
    load.elapsed_s = time.perf_counter() - load.start
    provider.shutdown()
    return load


def stored_rows(data_dir: Path, deduped: bool = False) -> tuple[int, int]:
    """Rows in spans / llm_calls through the store's own catalog (plain read_parquet if that fails).
    `deduped`: the views' rows, one per span id (compaction keeps the files it replaced a while,
    so the files hold more); else every stored row (resent requests repeat span ids)."""
    import duckdb

    tables = ("spans", "llm_calls")
    try:
        from store.catalog import connect

        con = connect(data_dir)
        sql = "SELECT count(*) FROM {t}" if deduped else "SELECT count(*) FROM {t}_raw"
    except Exception as exc:  # the catalog is someone else's moving part; the count must still happen
        print(f"store.catalog.connect failed ({exc!r:.200}); counting the Parquet files directly", file=sys.stderr)
        con, sql = duckdb.connect(), f"SELECT count(*) FROM read_parquet('{data_dir}/{{t}}/**/*.parquet')"
    try:
        return tuple(
            con.execute(sql.format(t=t)).fetchone()[0] if any((data_dir / t).rglob("*.parquet")) else 0 for t in tables
        )
    finally:
        con.close()


def seed_store(source: Path, data_dir: Path) -> tuple[set[int], tuple[int, int]]:
    """Hard-link a generated store's tables (bench.store_gen) into `data_dir`, so a run starts on a
    store already holding that much data without copying it (the collector never writes into an
    existing file: new files are written beside and renamed). Returns the seed files' inodes and
    its row counts, to leave them out of the run's figures."""
    for table in ("spans", "llm_calls", "outcomes"):
        for path in (source / table).rglob("*.parquet"):
            target = data_dir / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    inodes = {path.stat().st_ino for path in data_dir.rglob("*.parquet")}
    return inodes, stored_rows(data_dir, deduped=True)


def run_once(args: argparse.Namespace, fsync: bool, rate: float, payloads: list[tuple[bytes, int, int]]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-", dir=args.tmp_dir))
    data_dir = work / "data"
    seed_inodes, seed_rows = seed_store(Path(args.seed_store), data_dir) if args.seed_store else (set(), (0, 0))
    try:
        with CollectorProcess(data_dir, fsync) as collector:
            profiler = None
            if args.py_spy or args.py_spy_native:
                profiler = start_profiler(collector.proc.pid, work / "profile.folded", args.py_spy_native)
            cpu0, workers0, own0 = collector.cpu_s(), collector.workers_cpu_s(), time.process_time()
            ticks0 = _machine_ticks()
            fresh = not args.repeat_ids
            load = run_sdk(collector, args) if args.sdk else run_raw(collector, payloads, args, rate, fresh)
            ticks, stolen = (now - before for now, before in zip(_machine_ticks(), ticks0, strict=True))
            cpu, own = collector.cpu_s() - cpu0, time.process_time() - own0
            workers_cpu = collector.workers_cpu_s() - workers0
            syncs = collector.wal_syncs()
            drain_s = collector.stop()
        if profiler is not None:
            profiler.wait(timeout=60)
            print_profile(work / "profile.folded", "native, all busy threads" if args.py_spy_native else "--gil")
        stored = stored_rows(data_dir, deduped=not args.repeat_ids)
        spans, calls = (n - seeded for n, seeded in zip(stored, seed_rows, strict=True))
        files = [p.stat() for p in data_dir.rglob("*.parquet")]
        parquet_bytes = [f.st_size for f in files if f.st_ino not in seed_inodes]
        secs, raw = load.elapsed_s, not args.sdk
        return {
            "mode": "sdk" if args.sdk else (f"paced {rate:,.0f}/s" if rate else "max"),
            "transport": "http" if args.http else "grpc",
            "seed_store_spans": seed_rows[0],
            "wal_fsync": fsync,
            "concurrency": args.concurrency if raw else 1,
            "load_s": round(secs, 2),
            "acked_requests": load.requests if raw else None,
            "acked_spans_per_s": round(load.spans / secs) if raw else None,
            "acked_spans_per_s_2nd_half": round(load.steady_rate()) if raw else None,
            "otlp_mb_per_s": round(load.otlp_bytes / secs / 1e6, 2) if raw else None,
            "otlp_mb_per_s_2nd_half": round(load.steady_rate(4) / 1e6, 2) if raw else None,
            **{f"ack_{k}_ms": v for k, v in load.percentiles(1).items()},
            **{f"ack_incl_retries_{k}_ms": v for k, v in load.percentiles(2).items() if k != "p50"},
            **syncs,
            "refused_retried": load.refused,
            "errors": load.errors,
            "collector_rss_peak_mb": round(collector.rss_peak_mb),
            "collector_rss_avg_mb": round(collector.rss_sum_mb / max(collector.samples, 1)),
            "collector_with_workers_pss_peak_mb": round(collector.total_pss_peak_mb),
            "collector_cpu_cores": round(cpu / secs, 2),
            "decode_workers_cpu_cores": round(workers_cpu / secs, 2),
            "collector_cpu_us_per_acked_span": round((cpu + workers_cpu) * 1e6 / load.spans, 1) if load.spans else None,
            "loadgen_cpu_cores": round(own / secs, 2),
            # A virtual machine's slow minutes: the share of its CPU time the host ran someone else.
            "machine_steal_pct": round(100 * stolen / ticks, 1) if ticks else None,
            "drain_after_stop_s": round(drain_s, 2),
            "sent_spans": load.spans,
            "stored_spans": spans,
            "sent_llm_calls": load.calls,
            "stored_llm_calls": calls,
            "stored_spans_per_s_e2e": round(spans / (secs + drain_s)),
            "sdk_spans_per_s_created": None if raw else round(load.spans / secs),
            "distinct_requests": min(load.requests, len(payloads)) if raw else None,
            "parquet_files": len(parquet_bytes),
            "parquet_mb": round(sum(parquet_bytes) / 1e6, 1),
            "otlp_mb_sent": round(load.otlp_bytes / 1e6, 1) if raw else None,
            "parquet_to_otlp": round(sum(parquet_bytes) / load.otlp_bytes, 3) if load.otlp_bytes else None,
        }
    finally:
        if args.keep_data:
            print(f"data and collector.log kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_stages(payloads: list[tuple[bytes, int, int]], args: argparse.Namespace) -> dict:
    """Spans/s of each step of the collector's path on one thread, in-process: where the ceiling is."""
    import pyarrow as pa

    from collector.signals import TRACES
    from store.writer import write_partitioned

    sample = [payload for payload, _, _ in payloads[:16]]
    spans = len(sample) * args.spans_per_request
    row: dict[str, Any] = {"mode": "stages, 1 thread"}
    TRACES.decode(TRACES.request_type.FromString(sample[-1]), time.time_ns())  # warm-up: lazy imports, caches

    def timed(name: str, step: Any) -> Any:
        began = time.perf_counter()
        out = step()
        row[f"{name}_spans_per_s"] = round(spans / (time.perf_counter() - began))
        return out

    requests = timed("parse", lambda: [TRACES.request_type.FromString(p) for p in sample])
    timed("validate", lambda: [TRACES.validate(r) for r in requests])
    tables = timed("decode_normalize", lambda: [TRACES.decode(r, time.time_ns()) for r in requests])
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        merged = {name: pa.concat_tables([t[name] for t in tables]) for name in tables[0]}
        timed("parquet_write", lambda: [write_partitioned(Path(tmp), n, t, tag="x") for n, t in merged.items()])
    return row


def start_profiler(pid: int, out: Path, native: bool) -> subprocess.Popen:
    """py-spy (on PATH, else through uvx) samples the GIL holder until the collector exits; with
    `native`, every busy thread of the collector and its decode workers, C frames included."""
    spy = [shutil.which("py-spy")] if shutil.which("py-spy") else ["uvx", "py-spy"]
    # Native stacks need py-spy to pause the process at each sample: that costs a little throughput.
    mode = ["--native", "--subprocesses"] if native else ["--gil", "--nonblocking"]
    cmd = [*spy, "record", "--pid", str(pid), *mode, "-r", "100", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(folded: Path, mode: str, top: int = 25) -> None:
    """Self and inclusive share of samples per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in folded.read_text().splitlines() if folded.exists() else []:
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r"\((?:.*/site-packages/)?(.*?):\d+\)$", r"(\1)", f) for f in stack.split(";")]
        if frames[0].startswith("process "):  # --subprocesses: which process, as a short name
            frames[0] = "[decode worker]" if "multiprocessing" in frames[0] else "[collector main process]"
        own[frames[-1]] += int(count)
        inclusive.update(dict.fromkeys(frames, int(count)))
    total = sum(own.values()) or 1
    print(f"collector profile (py-spy {mode}, {total} samples): self% / inclusive%")
    for name, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}  {100 * inclusive[name] / total:5.1f}  {name}")
    print("  inclusive only:")
    for name, count in inclusive.most_common(top):
        print(f"  {'':5}  {100 * count / total:5.1f}  {name}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def print_table(rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    width = max(map(len, keys))
    for key in keys:
        print(f"{key:<{width}}  " + "  ".join(f"{_cell(row.get(key)):>16}" for row in rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads, raw mode (default 8)")
    parser.add_argument("--spans-per-request", type=int, default=512, help="spans per Export (default 512)")
    parser.add_argument("--content-bytes", type=int, default=1024, help="message text per chat span (default 1024)")
    parser.add_argument("--payloads", type=int, default=64, help="distinct pre-encoded requests (default 64)")
    parser.add_argument(
        "--wal-fsync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fsync the WAL before acking (default on)",
    )
    parser.add_argument("--compare-fsync", action="store_true", help="run with fsync on, then off")
    parser.add_argument("--rate", type=float, default=0.0, help="pace to R spans/s (ack latency at a given load)")
    parser.add_argument(
        "--rate-fraction", type=float, help="run at max, then paced at this fraction of its end-to-end stored rate"
    )
    parser.add_argument("--http", action="store_true", help="send OTLP/HTTP protobuf to /v1/traces instead of gRPC")
    parser.add_argument("--sdk", action="store_true", help="send through the OTel SDK exporter instead")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out of latency figures")
    parser.add_argument("--retry-sleep", type=float, default=0.05, help="seconds before retrying a refusal")
    parser.add_argument("--tmp-dir", help="where the data folders go (default: system temp)")
    parser.add_argument(
        "--seed-store",
        help="start on a store already holding this generated store's data (bench.store_gen output, "
        "hard-linked: same file system as --tmp-dir); its rows and files are left out of the figures",
    )
    parser.add_argument("--keep-data", action="store_true", help="keep the data folders and collector log")
    parser.add_argument("--stages", action="store_true", help="time parse/validate/decode/write in-process only")
    parser.add_argument("--py-spy", action="store_true", help="profile the collector with py-spy --gil")
    parser.add_argument(
        "--py-spy-native", action="store_true", help="profile every busy collector and worker thread, C frames too"
    )
    parser.add_argument(
        "--repeat-ids",
        action="store_true",
        help="resend the pre-encoded requests as they are (default: fresh trace ids per send, so that in runs "
        "long enough for compaction, from 60 s on, it merges new rows instead of dropping resends)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = parser.parse_args(argv)

    payloads: list[tuple[bytes, int, int]] = []
    if not args.sdk or args.stages:
        began = time.perf_counter()
        for i in range(args.payloads):
            payload, calls = build_request(1_000 + i, args.spans_per_request, args.content_bytes)
            payloads.append((payload, args.spans_per_request, calls))
        size = sum(len(p) for p, _, _ in payloads) / len(payloads)
        print(
            f"generated {len(payloads)} requests x {args.spans_per_request} spans, {size / 1e6:.2f} MB each "
            f"({size / args.spans_per_request:,.0f} B/span) in {time.perf_counter() - began:.1f}s",
            file=sys.stderr,
        )
    rows = [run_stages(payloads, args)] if args.stages else []
    for fsync in () if args.stages else (True, False) if args.compare_fsync else (args.wal_fsync,):
        rows.append(run_once(args, fsync, args.rate, payloads))
        if args.rate_fraction and not args.sdk:
            rows.append(run_once(args, fsync, rows[-1]["stored_spans_per_s_e2e"] * args.rate_fraction, payloads))
    print(f"machine: {os.cpu_count()} cores, collector + load generator on the same box")
    print_table(rows)
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "args": vars(args), "runs": rows}))


if __name__ == "__main__":
    main()
