"""kill -9 under sustained load: every span the client saw acknowledged is stored exactly once.

A real `vigil collector` process is killed with SIGKILL again and again while client threads
export spans to it, then restarted on the same data dir (on a new port). Clients keep what was
not acknowledged and send it again to the next process, and now and then send an acknowledged
request again, as an exporter does when an answer is lost. After a clean SIGTERM at the end,
every acknowledged span must be in `spans` exactly once and every acknowledged LLM span in
`llm_calls` exactly once: the write-ahead log is what makes an acknowledgement durable, and the
views are what make replays and retries count once.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.attributes import encode_attributes
from collector.server import Collector
from tests.conftest import make_config, query, wait_for

REPO = Path(__file__).resolve().parents[1]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
NOW = 1_790_000_000_000_000_000
_LISTENING = re.compile(r"OTLP/gRPC on 127\.0\.0\.1:(\d+)")

SpanKey = tuple[str, str]  # (trace_id, span_id) as the store writes them: lowercase hex


class CollectorProcess:
    """`python -m vigil collector` on a data dir, its output in files (a full pipe would block it)."""

    def __init__(self, data_dir: Path, logs: Path, **settings: str) -> None:
        self.data_dir, self.logs = data_dir, logs
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        self.env.update({f"VIGIL_COLLECTOR_{k.upper()}": v for k, v in settings.items()})
        self.runs = 0
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60, grpc_listen: str = "127.0.0.1:0") -> int:
        """Start on a free port (or `grpc_listen`); return the port once it listens."""
        self.runs += 1
        out = self.logs / f"run-{self.runs}.out"
        command = [sys.executable, "-m", "vigil", "collector", "--data-dir", str(self.data_dir)]
        command += ["--grpc-listen", grpc_listen, "--http-listen", "127.0.0.1:0"]
        with open(out, "w") as stdout, open(self.logs / f"run-{self.runs}.err", "w") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=self.env, cwd=REPO)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = _LISTENING.search(out.read_text())
            if found:
                return int(found.group(1))
            assert self.process.poll() is None, f"collector exited: {self.stderr()}"
            time.sleep(0.05)
        raise AssertionError(f"collector did not start within {timeout_s}s: {self.stderr()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> int:
        """SIGTERM to the main thread: see test_sigterm_reaching_any_thread_stops_the_collector for why."""
        assert self.process is not None
        _signal_thread(self.process.pid, self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=60)

    def stderr(self) -> str:
        return (self.logs / f"run-{self.runs}.err").read_text()

    def all_stderr(self) -> str:
        return "".join((self.logs / f"run-{n}.err").read_text() for n in range(1, self.runs + 1))


def _signal_thread(pid: int, tid: int, signum: int) -> None:
    """Send `signum` to one thread of process `pid` (Linux tgkill); elsewhere, to the process."""
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None)
    if tgkill is None or tgkill(pid, tid, signum) != 0:
        os.kill(pid, signum)


def _attrs(**values: object) -> list[KeyValue]:
    return encode_attributes({key.replace("__", "."): value for key, value in values.items()})


def build_request(client: int, number: int, rng: random.Random) -> tuple[bytes, set[SpanKey], set[SpanKey]]:
    """One agent trace: a root span and 1-4 chat spans under it (leaves, so each is one LLM call).

    Returns the payload, all its span keys, and the keys of its LLM spans.
    """
    trace_id = bytes([client + 1]) + number.to_bytes(8, "big") + rng.randbytes(7)
    root_id = (number * 8 + 1).to_bytes(7, "big") + bytes([client + 1])
    spans = [
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name="invoke_agent crash-test",
            start_time_unix_nano=NOW,
            end_time_unix_nano=NOW + 2_000_000_000,
            attributes=_attrs(gen_ai__operation__name="invoke_agent", gen_ai__agent__name="crash"),
        )
    ]
    for call in range(rng.randint(1, 4)):
        messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "q" * rng.randint(50, 800)}]}])
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=(number * 8 + 2 + call).to_bytes(7, "big") + bytes([client + 1]),
                parent_span_id=root_id,
                name="chat gpt-4o",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=NOW + call,
                end_time_unix_nano=NOW + 1_000_000_000,
                attributes=_attrs(
                    gen_ai__operation__name="chat",
                    gen_ai__provider__name="openai",
                    gen_ai__request__model="gpt-4o",
                    gen_ai__usage__input_tokens=100 + call,
                    gen_ai__usage__output_tokens=10,
                    gen_ai__input__messages=messages,
                ),
            )
        )
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_attrs(service__name=f"client-{client}")),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    keys = {(span.trace_id.hex(), span.span_id.hex()) for span in spans}
    return request.SerializeToString(), keys, keys - {(trace_id.hex(), root_id.hex())}


class Target:
    """Where the collector listens right now (None while it is down), and how many times it went down."""

    def __init__(self) -> None:
        self._port: int | None = None
        self._lock = threading.Lock()
        self.downs = 0

    @property
    def port(self) -> int | None:
        with self._lock:
            return self._port

    @port.setter
    def port(self, value: int | None) -> None:
        with self._lock:
            self._port = value
            self.downs += value is None


class Client(threading.Thread):
    """Exports in a loop; keeps what was acknowledged and retries what was not."""

    def __init__(self, number: int, target: Target, seed: int, stop: threading.Event) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.target, self.stop = number, target, stop
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.sent: set[SpanKey] = set()
        self.sent_llm: set[SpanKey] = set()
        self.acked: set[SpanKey] = set()
        self.acked_llm: set[SpanKey] = set()
        self.pending: list[tuple[bytes, set[SpanKey], set[SpanKey]]] = []
        self.acked_requests: list[tuple[bytes, set[SpanKey], set[SpanKey]]] = []
        self.acks = self.failures = self.duplicates = 0
        self.errors: list[str] = []

    def run(self) -> None:
        port, channel, made = None, None, 0
        while not self.stop.is_set():
            if self.target.port is None:
                time.sleep(0.02)
                continue
            if port != self.target.port:
                if channel is not None:
                    channel.close()
                port = self.target.port
                channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            assert channel is not None
            roll = self.rng.random()
            if self.pending and roll < 0.5:
                request = self.pending.pop(0)  # a retry, maybe to a different process than the first try
            elif self.acked_requests and roll < 0.6:
                request = self.rng.choice(self.acked_requests)  # as if the first answer had been lost
                self.duplicates += 1
            else:
                made += 1
                request = build_request(self.number, made, self.rng)
                self.sent |= request[1]
                self.sent_llm |= request[2]
            self._export(channel, request)
        if channel is not None:
            channel.close()

    def _export(self, channel: grpc.Channel, request: tuple[bytes, set[SpanKey], set[SpanKey]]) -> None:
        payload, keys, llm_keys = request
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        downs = self.target.downs
        try:
            answer = call(payload, timeout=10)
        except grpc.RpcError as error:
            # A process that is down answers UNAVAILABLE. One killed mid-call may break the call in
            # any way; a running one must never answer anything else.
            if error.code() != grpc.StatusCode.UNAVAILABLE and self.target.downs == downs:
                self.errors.append(f"{error.code()}: {error.details()}")
            self.pending.append(request)
            self.failures += 1
            time.sleep(0.02)
            return
        if ExportTraceServiceResponse.FromString(answer) != ExportTraceServiceResponse():
            self.errors.append(f"unexpected partial success: {answer!r}")
        with self.lock:
            self.acked |= keys
            self.acked_llm |= llm_keys
            self.acks += 1
        self.acked_requests.append(request)

    def ack_count(self) -> int:
        with self.lock:
            return self.acks


def _store_counts(data_dir: Path, view: str) -> dict[SpanKey, int]:
    rows = query(data_dir, f"SELECT trace_id, span_id, count(*) AS n FROM {view} GROUP BY ALL")
    return {(row["trace_id"], row["span_id"]): row["n"] for row in rows}


def _assert_each_once(counts: dict[SpanKey, int], acked: set[SpanKey], view: str) -> None:
    missing = acked - counts.keys()
    assert not missing, f"{len(missing)} acknowledged spans missing from {view}, e.g. {sorted(missing)[:3]}"
    repeated = {key: n for key, n in counts.items() if n != 1}
    assert not repeated, f"{view} holds spans more than once: {list(repeated.items())[:3]}"


def test_kill_9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20240607)
    data_dir = tmp_path / "store"
    # Frequent flushes, so kills also land between Parquet commits and checkpoints.
    collector = CollectorProcess(data_dir, tmp_path, flush_interval_s="0.3", metrics_log_interval_s="0")
    target, stop = Target(), threading.Event()
    clients = [Client(n, target, rng.randrange(2**32), stop) for n in range(3)]
    for client in clients:
        client.start()
    kills = 6
    try:
        for _ in range(kills):
            target.port = collector.start()
            acked_before = sum(c.ack_count() for c in clients)
            # Under load: wait for this process to acknowledge some requests, then kill it at a random moment.
            wait_for(lambda: sum(c.ack_count() for c in clients), lambda n, a=acked_before: n >= a + 20, 20)
            time.sleep(rng.uniform(0.05, 1.0))
            target.port = None  # first, so that calls the kill breaks are known to be broken by it
            collector.kill()
        target.port = collector.start()
        # The last process gets the retries of everything the killed ones did not acknowledge.
        wait_for(lambda: sum(len(c.pending) for c in clients), lambda n: n == 0, 30)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
        returncode = collector.terminate() if collector.process and collector.process.poll() is None else None
    assert returncode == 0, collector.stderr()
    assert not any(c.is_alive() for c in clients), "a client thread hung"
    assert [e for c in clients for e in c.errors] == []

    acked = set().union(*(c.acked for c in clients))
    acked_llm = set().union(*(c.acked_llm for c in clients))
    sent = set().union(*(c.sent for c in clients))
    spans = _store_counts(data_dir, "spans")
    _assert_each_once(spans, acked, "spans")
    assert spans.keys() <= sent, "the store holds spans no client sent"
    calls = _store_counts(data_dir, "llm_calls")
    _assert_each_once(calls, acked_llm, "llm_calls")
    assert calls.keys() <= set().union(*(c.sent_llm for c in clients)), "only the chat spans are LLM calls"

    raw = query(data_dir, "SELECT count(*) AS n FROM spans_raw")[0]["n"]
    recovered = sum(int(n) for n in re.findall(r"recovered requests=(\d+)", collector.all_stderr()))
    print(
        f"kills={kills} acked_spans={len(acked)} acked_llm_calls={len(acked_llm)} stored_spans={len(spans)} "
        f"raw_rows={raw} deduplicated={raw - len(spans)} resent_acked_requests={sum(c.duplicates for c in clients)} "
        f"failed_exports={sum(c.failures for c in clients)} wal_recovered_requests={recovered}"
    )


def test_kill_9_before_any_flush_recovers_everything_from_the_wal(tmp_path: Path) -> None:
    data_dir = tmp_path / "store"
    # No timed flush: acknowledged spans exist only in the write-ahead log when the process dies.
    collector = CollectorProcess(data_dir, tmp_path, flush_interval_s="3600", metrics_log_interval_s="0")
    rng = random.Random(7)
    acked: set[SpanKey] = set()
    acked_llm: set[SpanKey] = set()
    port = collector.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for number in range(1, 31):
                payload, keys, llm_keys = build_request(0, number, rng)
                assert call(payload, timeout=10) == b""
                acked |= keys
                acked_llm |= llm_keys
        assert not list(data_dir.glob("spans/date=*/*.parquet")), "nothing was flushed before the kill"
    finally:
        collector.kill()

    port = collector.start()  # replays the log before it listens
    try:
        assert "recovered requests=30" in collector.stderr()
        spans = wait_for(lambda: _store_counts(data_dir, "spans"), lambda s: s.keys() >= acked)
        _assert_each_once(spans, acked, "spans")
        _assert_each_once(_store_counts(data_dir, "llm_calls"), acked_llm, "llm_calls")
    finally:
        assert collector.terminate() == 0, collector.stderr()

    # The replayed rows were checkpointed: a further restart replays nothing and adds nothing.
    collector.start()
    try:
        assert "recovered requests" not in collector.stderr()
    finally:
        assert collector.terminate() == 0, collector.stderr()
    assert query(data_dir, "SELECT count(*) AS n FROM spans_raw") == [{"n": len(acked)}]
    _assert_each_once(_store_counts(data_dir, "llm_calls"), acked_llm, "llm_calls")


def test_checkpoint_never_passes_a_logged_request_still_on_its_way(tmp_path: Path) -> None:
    """A crash image taken when the checkpoint has passed a request must still hold that request.

    Two handler threads log requests 1 and 2; the one holding request 1 is preempted before it
    hands it to the pipeline (here: made to sleep). If request 2 reached the pipeline first and
    was flushed, a checkpoint of 2 would tell recovery to skip request 1, acknowledged but unwritten.
    """
    rng = random.Random(3)
    first, second = build_request(0, 1, rng), build_request(0, 2, rng)
    with Collector(make_config(tmp_path / "data", flush_interval_s=0.1)) as collector:
        submit, handing_on = collector.pipeline.submit, threading.Event()

        def preempted_submit(seq: int, *rest: object) -> None:
            if seq == 1:
                handing_on.set()
                time.sleep(1.0)
            submit(seq, *rest)

        collector.pipeline.submit = preempted_submit  # type: ignore[method-assign]
        with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
            call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            answers: list[bytes] = []
            sender = threading.Thread(target=lambda: answers.append(call(first[0], timeout=30)))
            sender.start()
            assert handing_on.wait(timeout=30)
            assert call(second[0], timeout=30) == b""
            assert wait_for(lambda: collector.wal.checkpoint_seq, lambda seq: seq >= 2) >= 2
            shutil.copytree(collector.root, tmp_path / "crash-image")  # as if killed right now
            sender.join(timeout=30)
            assert answers == [b""]
    with Collector(make_config(tmp_path / "crash-image")):
        pass  # recovers from the image
    stored = _store_counts(tmp_path / "crash-image", "spans")
    _assert_each_once(stored, first[1] | second[1], "spans")


def test_sigterm_reaching_any_thread_stops_the_collector(tmp_path: Path) -> None:
    """`kill PID` may deliver SIGTERM to any thread of the process; the collector must stop either way."""
    if not Path("/proc/self/task").is_dir() or getattr(ctypes.CDLL(None), "tgkill", None) is None:
        pytest.skip("needs Linux /proc and tgkill to pick the thread a signal goes to")
    collector = CollectorProcess(tmp_path / "store", tmp_path, metrics_log_interval_s="0")
    collector.start()
    assert collector.process is not None
    pid = collector.process.pid
    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    _signal_thread(pid, others[-1], signal.SIGTERM)
    try:
        assert collector.process.wait(timeout=15) == 0
    finally:
        if collector.process.poll() is None:
            collector.kill()
