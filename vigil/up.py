"""`vigil up`: the collector, the dashboards and (with --demo) a demo that tells a story, in one command.

Comes in: a Config (data dir, listen addresses), the dashboards port and whether to load the demo.
Goes out: a collector running in this process, Streamlit as a child process on loopback, the
committed demo recording (sample_data/demo/) replayed through the collector's real OTLP/gRPC path
into an empty store, a small synthetic agent sending one live trace every few seconds, and the
simulated OpenAI-compatible model server (replay/simulator.py) on a loopback thread.
Stays in the foreground; Ctrl-C or SIGTERM stops the agent, terminates Streamlit, stops the
simulator and the collector, which writes everything to Parquet. Streamlit also exits by itself
when this process is killed outright (PR_SET_PDEATHSIG on Linux). Must not: generate demo data (that needs the dev-only
OTel SDK; `sample_data/generate.py` does it once), reload a store that already has spans, or leave
a child process behind.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from collector.attributes import encode_attributes
from collector.otlp_json import hex_ids_to_base64
from store.config import Config
from store.keys import create_key, keys_path, load_keys, revoke_key
from store.location import TableLocation, has_data, table_location
from vigil.sim_cli import simulator_for_up

logger = logging.getLogger(__name__)

DEMO_FILE = Path(__file__).resolve().parents[1] / "sample_data" / "demo" / "demo.otlp.jsonl.gz"
# The recording's last day (sample_data/demo/README.md). `vigil up` moves every time by whole days so that it is
# yesterday: the dashboards' default window (last 7 days) then shows the demo's second week against its first.
DEMO_LAST_DAY = date(2026, 11, 20)
# Marks a demo load that has not finished, and holds its shift in days: the next `vigil up` sends it all again with
# the same shift (so the rows are deduplicated), even on another day.
_LOADING_MARK = ".demo-loading"
# With [auth] enabled the demo sends with a key of its own, for project "demo", named so a later `up` finds it.
DEMO_KEY_NAME = "vigil up demo"
DEMO_PROJECT = "demo"
LIVE_INTERVAL_S = 5.0
# argv: parent pid, then the command. 1 = PR_SET_PDEATHSIG (linux/prctl.h).
_LAUNCHER = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def dashboards_app() -> Path:
    import dashboards

    return Path(dashboards.__file__).parent / "app.py"


def dashboards_command(port: int, app: Path) -> list[str]:
    return [
        sys.executable, "-m", "dashboards.serve", "run", str(app),  # streamlit, the store opened at start
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",  # no "Deploy" button: vigil is self-hosted
    ]  # fmt: skip


def dashboards_env(data_dir: Path, config_path: str | None) -> dict[str, str]:
    env = dict(os.environ, VIGIL_STORE_DATA_DIR=str(data_dir.resolve()))
    if config_path:
        env["VIGIL_CONFIG"] = str(Path(config_path).resolve())
    return env


def start_dashboards(data_dir: Path, port: int, config_path: str | None, app: Path | None = None):
    """Streamlit as a child process, output in <data_dir>/dashboards.log; None when there is no app yet."""
    app = app or dashboards_app()
    if not app.exists():
        logger.warning("dashboards not started: %s does not exist yet", app)
        return None
    log = open(data_dir / "dashboards.log", "ab")  # noqa: SIM115 - the child writes to it until it exits
    try:
        return subprocess.Popen(
            exit_with_parent(dashboards_command(port, app)),
            env=dashboards_env(data_dir, config_path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def exit_with_parent(command: list[str]) -> list[str]:
    """`command`, run so that Linux sends it SIGTERM when this process dies, even by SIGKILL.

    A tiny launcher sets PR_SET_PDEATHSIG (kept across exec) and then execs the command, so the pid
    stays the same. Not a preexec_fn: that runs Python in the forked child, where gRPC's fork
    handlers abort. The signal follows the *thread* that started the child: start it from the main
    thread. If this process died before prctl ran, nobody would signal, so the launcher checks."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command]


def stop_process(process: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        logger.warning("dashboards did not stop in %.0fs; killing pid=%d", timeout_s, process.pid)
        process.kill()
        process.wait()


def store_has_spans(data_dir: Path, location: TableLocation | None = None) -> bool:
    """Spans stored (in `location`: a uri's Delta tables; default plain Parquet in `data_dir`), or
    requests in the local write-ahead log that the collector will replay."""
    if has_data(location or TableLocation(data_dir), "spans"):
        return True
    return any(segment.stat().st_size > 0 for segment in (data_dir / "wal").glob("*.wal"))


def needs_demo(data_dir: Path, location: TableLocation | None = None) -> bool:
    return (data_dir / _LOADING_MARK).exists() or not store_has_spans(data_dir, location)


def read_recording(path: Path) -> Iterator[ExportTraceServiceRequest]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                yield ParseDict(hex_ids_to_base64(record["request"]), ExportTraceServiceRequest())


Metadata = tuple[tuple[str, str], ...]


@contextlib.contextmanager
def demo_credentials(config: Config) -> Iterator[Metadata]:
    """gRPC metadata for the demo's own sends: none with auth off. With auth on, a key for project "demo"
    that lives as long as this `vigil up`; one a killed `up` left active is revoked first."""
    if not config.auth.enabled:
        yield ()
        return
    path = keys_path(config)
    for key in load_keys(path):
        if key.name == DEMO_KEY_NAME and key.active:
            revoke_key(path, key.id)
    record, secret = create_key(path, DEMO_PROJECT, DEMO_KEY_NAME)
    try:
        yield (("authorization", f"Bearer {secret}"),)
    finally:
        revoke_key(path, record.id)


def load_demo(
    grpc_port: int,
    data_dir: Path,
    path: Path = DEMO_FILE,
    stop: threading.Event | None = None,
    progress=None,
    metadata: Metadata = (),
    today: date | None = None,
) -> int:
    """Send every request of the recording to the collector, moved to end yesterday; returns how many were sent."""
    mark = data_dir / _LOADING_MARK
    shift_ns = _demo_shift_days(mark, today or datetime.now(UTC).date()) * 86_400 * 10**9
    with gzip.open(path, "rb") as raw:
        total = sum(1 for line in raw if line.strip())
    sent = 0
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        export = TraceServiceStub(channel).Export
        for request in read_recording(path):
            if stop is not None and stop.is_set():
                return sent  # the mark stays: the next `vigil up` sends it all again
            shift_times(request, shift_ns)
            export(request, timeout=30, wait_for_ready=True, metadata=metadata)
            sent += 1
            if progress:
                progress(sent, total)
    mark.unlink(missing_ok=True)
    return sent


def _demo_shift_days(mark: Path, today: date) -> int:
    """The shift of an unfinished load (kept in its mark), else the one that makes DEMO_LAST_DAY yesterday."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(mark.read_text())
    days = (today - timedelta(days=1) - DEMO_LAST_DAY).days
    mark.write_text(str(days))
    return days


def shift_times(request: ExportTraceServiceRequest, shift_ns: int) -> None:
    """Move every span and span event of `request` by `shift_ns` (in place)."""
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                span.start_time_unix_nano += shift_ns
                span.end_time_unix_nano += shift_ns
                for event in span.events:
                    event.time_unix_nano += shift_ns


def progress_bar(width: int = 30) -> Callable[[int, int], None]:
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        filled = width * done // max(total, 1)
        line = f"loading demo [{'#' * filled}{'.' * (width - filled)}] {done}/{total} requests"
        if tty:
            print("\r" + line, end="\n" if done == total else "", file=sys.stderr, flush=True)
        elif done == total or done % max(1, total // 4) == 0:
            print(line, file=sys.stderr, flush=True)

    return show


def live_request(rng: random.Random, now_ns: int) -> ExportTraceServiceRequest:
    """One small support-bot task (root + chat call), OTel GenAI attributes, timed just before now."""
    trace_id, root_id, call_id = rng.randbytes(16), rng.randbytes(8), rng.randbytes(8)
    tokens_in, tokens_out = rng.randint(700, 1500), rng.randint(60, 200)
    refused = rng.random() < 0.2
    answer = "I'm sorry, but I can't help with that." if refused else "Your order left our warehouse yesterday."
    start = now_ns - int(rng.uniform(1.5, 3.0) * 1e9)
    call = Span(
        trace_id=trace_id, span_id=call_id, parent_span_id=root_id, name="chat gpt-4o",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + 50_000_000, end_time_unix_nano=now_ns - 20_000_000,
        attributes=encode_attributes({
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "gen_ai.input.messages": _messages("user", "Where is my order?"),
            "gen_ai.output.messages": _messages("assistant", answer, finish_reason="stop"),
        }),
    )  # fmt: skip
    root = Span(
        trace_id=trace_id, span_id=root_id, name="agent.task", kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start, end_time_unix_nano=now_ns,
        attributes=encode_attributes({"task.name": "answer_ticket", "prompt.id": "support-answer",
                                      "prompt.version": "v3", "task.outcome": "failure" if refused else "success",
                                      "vigil.demo.live": True}),
    )  # fmt: skip
    resource = ResourceSpans()
    resource.resource.attributes.extend(
        encode_attributes({"service.name": "support-bot", "deployment.environment.name": "demo"})
    )
    scope = resource.scope_spans.add()
    scope.scope.name = "vigil.demo.live"
    scope.spans.extend([call, root])
    return ExportTraceServiceRequest(resource_spans=[resource])


def _messages(role: str, text: str, **extra: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}], **extra}])


def run_live_agent(
    grpc_port: int, stop: threading.Event, interval_s: float = LIVE_INTERVAL_S, metadata: Metadata = ()
) -> None:
    """Send one live task every `interval_s` until `stop`; a failed send is logged and tried again next time."""
    rng = random.Random()
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        export = TraceServiceStub(channel).Export
        while not stop.wait(interval_s):
            try:
                export(live_request(rng, time.time_ns()), timeout=10, metadata=metadata)
            except grpc.RpcError as exc:
                logger.warning("live demo trace not sent: %s", exc.code())


def run_up(
    config: Config, config_path: str | None, dashboards_port: int, demo: bool, sim_llm_listen: str | None = None
) -> int:
    from collector.server import Collector

    data_dir = Path(config.store.data_dir)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    dashboards = None
    live: threading.Thread | None = None
    # decided before the collector replays its log or anything arrives
    load = demo and needs_demo(data_dir, table_location(config.store))
    with contextlib.ExitStack() as running:
        # The simulator first, so that a taken --sim-llm-listen fails before anything else starts.
        sim_llm = running.enter_context(simulator_for_up(sim_llm_listen)) if demo else None
        # The key exists before the collector reads its keys, and is revoked only after it stopped.
        metadata = running.enter_context(demo_credentials(config)) if demo else ()
        collector = running.enter_context(Collector(config))
        try:
            dashboards = start_dashboards(data_dir, dashboards_port, config_path)
            if dashboards is not None:
                logger.info("dashboards pid=%d port=%d log=%s", dashboards.pid, dashboards_port,
                            data_dir / "dashboards.log")  # fmt: skip
            _print_banner(config, collector, dashboards_port if dashboards else None, data_dir, sim_llm)
            if load and not DEMO_FILE.exists():
                logger.warning("no demo data at %s; starting with an empty store", DEMO_FILE)
            elif load:
                started = time.monotonic()
                sent = load_demo(collector.grpc_port, data_dir, stop=stop, progress=progress_bar(), metadata=metadata)
                logger.info("demo loaded requests=%d s=%.1f", sent, time.monotonic() - started)
            elif demo:
                logger.info("store at %s already has spans; not loading the demo again", data_dir)
            if demo and not stop.is_set():
                live = threading.Thread(
                    target=run_live_agent, args=(collector.grpc_port, stop, LIVE_INTERVAL_S, metadata), name="live-demo"
                )
                live.start()
            while not stop.wait(1.0):
                if dashboards is not None and dashboards.poll() is not None:
                    logger.warning(
                        "dashboards exited rc=%s; see %s", dashboards.returncode, data_dir / "dashboards.log"
                    )
                    dashboards = None
        finally:
            stop.set()
            if live is not None:
                live.join(15)
            stop_process(dashboards)
            logger.info("stopping the collector")
    return 0


def _print_banner(config: Config, collector, dashboards_port: int | None, data_dir: Path, sim_llm=None) -> None:
    grpc_host = config.collector.grpc_listen.rsplit(":", 1)[0]
    http_host = config.collector.http_listen.rsplit(":", 1)[0]
    ui = f"http://127.0.0.1:{dashboards_port}" if dashboards_port else "(not started, see the warning above)"
    if dashboards_port and sim_llm is not None:
        ui += f"  (the whole demo: {ui}/?range=all)"
    lines = [
        "vigil is up (Ctrl-C to stop)",
        f"  dashboards     {ui}",
        f"  OTLP/gRPC      {grpc_host}:{collector.grpc_port}",
        f"  OTLP/HTTP      http://{http_host}:{collector.http_port}",
        f"  data           {data_dir.resolve()}",
    ]
    if sim_llm is not None:
        lines.append(f"  simulated LLM  {sim_llm.base_url}  (OpenAI-compatible, rule-based answers: not a real model)")
    lines += [
        "point your agents at it:",
        f"  export OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc_host}:{collector.grpc_port}",
        "  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
        f"  (or OTEL_EXPORTER_OTLP_ENDPOINT=http://{http_host}:{collector.http_port} with "
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)",
    ]
    if sim_llm is not None:
        lines += ["call the simulated model with any OpenAI client, no API key needed:",
                  f"  export OPENAI_BASE_URL={sim_llm.base_url} OPENAI_API_KEY=sim"]  # fmt: skip
    print("\n".join(lines), flush=True)


def run_dashboards(data_dir: Path, port: int, config_path: str | None) -> int:
    """Only the dashboards, in the foreground (the process becomes Streamlit)."""
    app = dashboards_app()
    if not app.exists():
        print(f"vigil dashboards: {app} does not exist yet", file=sys.stderr)
        return 1
    print(f"vigil dashboards on http://127.0.0.1:{port} (data in {data_dir.resolve()})", flush=True)
    os.execve(sys.executable, dashboards_command(port, app), dashboards_env(data_dir, config_path))
