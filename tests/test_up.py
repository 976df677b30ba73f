"""`vigil up` as a user runs it: collector + dashboards + demo + simulated model, a real exporter, the
Overview in headless Chromium, the real openai client, Ctrl-C (or kill -9), nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import openai
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.test_cli import _free_port
from tests.test_dashboards_browser import CHROMIUM, page_text_showing
from vigil.up import dashboards_app

VIGIL = [sys.executable, "-m", "vigil"]


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None


def _wait(check, what: str, process: subprocess.Popen, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"vigil up exited while waiting for {what}"
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _query(data_dir: Path, sql: str) -> list[dict]:
    result = subprocess.run(
        [*VIGIL, "query", "--data-dir", str(data_dir), "--format", "json", sql], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _start(
    data_dir: Path, log: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int, int, int, int]:
    grpc_port, http_port, ui_port, sim_port = _free_port(), _free_port(), _free_port(), _free_port()
    with open(log, "wb") as stderr:  # a file, not a pipe: nobody reads stderr while the test waits
        process = subprocess.Popen(
            [*VIGIL, "up", "--data-dir", str(data_dir), "--grpc-listen", f"127.0.0.1:{grpc_port}",
             "--http-listen", f"127.0.0.1:{http_port}", "--dashboards-port", str(ui_port),
             "--sim-llm-listen", f"127.0.0.1:{sim_port}", *flags],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        )  # fmt: skip
    return process, grpc_port, http_port, ui_port, sim_port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        children = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        found.update(map(int, children))
        todo.extend(map(int, children))
    return found


def _assert_gone(children: set[int]) -> None:
    """Every child exits by itself (multiprocessing's resource tracker, for one, only sees its parent's exit)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], f"left behind: {children}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (dead, not yet reaped by init) counts as gone
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.timeout(400)
def test_up_loads_demo_serves_dashboards_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "store", tmp_path / "up.log"
    process, grpc_port, http_port, ui_port, sim_port = _start(data_dir, log)
    try:
        _wait(lambda: _http_status(f"http://127.0.0.1:{http_port}/readyz") == 200, "/readyz", process)
        _wait(lambda: "demo loaded" in log.read_text(), "the demo load", process)
        # Acknowledged is not yet flushed: the last requests reach Parquet within a flush interval.
        _wait(lambda: _query(data_dir, "SELECT count(*) AS n FROM spans")[0]["n"] > 5_000, "demo spans", process)
        demo_spans = _query(data_dir, "SELECT count(*) AS n FROM spans")[0]["n"]
        assert demo_spans > 5_000

        provider = TracerProvider(resource=Resource.create({"service.name": "up-test"}))
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("agent.task", attributes={"task.outcome": "success"}):
            pass
        provider.shutdown()
        sql = "SELECT name, outcome FROM tasks WHERE service_name = 'up-test'"
        assert _wait(lambda: _query(data_dir, sql), "the test trace", process) == [
            {"name": "agent.task", "outcome": "success"}
        ]
        # the live demo agent keeps sending
        live = "SELECT count(*) AS n FROM spans WHERE scope_name = 'vigil.demo.live'"
        _wait(lambda: _query(data_dir, live)[0]["n"] > 0, "a live demo trace", process, timeout_s=30)

        # the simulated model answers the real openai client, no key needed
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{sim_port}/v1", api_key="sim", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
        assert reply.system_fingerprint == "fp_vigil_simulator" and reply.choices[0].message.content

        pid = None
        if dashboards_app().exists():
            _wait(lambda: _http_status(f"http://127.0.0.1:{ui_port}/") == 200, "the dashboards", process)
            pid = int(re.search(r"dashboards pid=(\d+)", log.read_text()).group(1))
            if CHROMIUM.exists():  # the Overview, drawn by a real browser over the demo's data
                dom = page_text_showing(f"http://127.0.0.1:{ui_port}/?range=all", "Cost per successful task")
                assert "Success rate" in dom
        else:
            assert "dashboards not started" in log.read_text()
        children = _descendants(process.pid)  # Streamlit and the collector's decode workers
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    _assert_gone(children)
    assert process.returncode == 0, log.read_text()
    assert f"export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{grpc_port}" in out
    assert f"export OPENAI_BASE_URL=http://127.0.0.1:{sim_port}/v1 OPENAI_API_KEY=sim" in out
    assert f"http://127.0.0.1:{ui_port}" in out or pid is None
    assert not _listening(ui_port) and not _listening(sim_port) and not _listening(grpc_port)
    if pid is not None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass
        else:
            raise AssertionError(f"dashboards pid={pid} is still running")

    # A second `up` on the same store continues with its data and does not load the demo again.
    process, *_ = _start(data_dir, log)
    try:
        _wait(lambda: "already has spans" in log.read_text(), "the no-reload decision", process)
        assert _query(data_dir, "SELECT count(DISTINCT span_id) AS n FROM spans_raw")[0]["n"] >= demo_spans
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert "loading demo" not in log.read_text()


@pytest.mark.timeout(300)
def test_up_with_auth_loads_the_demo_with_a_key_of_its_own(tmp_path: Path) -> None:
    """With [auth] enabled the demo sends with a "demo" project key that `up` creates and revokes; others still
    need a key. A key a killed `up` left active is revoked by the next one."""
    data_dir, log = tmp_path / "store", tmp_path / "up.log"
    env = dict(os.environ, VIGIL_AUTH_ENABLED="true")
    process, grpc_port, *_ = _start(data_dir, log, env=env)
    try:
        _wait(lambda: "demo loaded" in log.read_text(), "the demo load", process)
        projects = "SELECT project, count(*) AS n FROM spans GROUP BY ALL"
        rows = _wait(lambda: [r for r in _query(data_dir, projects) if r["n"] > 5_000], "demo spans", process)
        assert [r["project"] for r in _query(data_dir, projects)] == ["demo"] and rows
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, pytest.raises(grpc.RpcError) as refused:
            TraceServiceStub(channel).Export(ExportTraceServiceRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        process.kill()  # no chance to revoke: the next `up` must
        process.wait(30)
    keys = json.loads((data_dir / "keys.json").read_text())["keys"]
    assert [(k["name"], k["revoked_at"] is None) for k in keys] == [("vigil up demo", True)]

    process, *_ = _start(data_dir, log, env=env)
    try:
        _wait(lambda: "not loading the demo again" in log.read_text(), "the second start", process)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    keys = json.loads((data_dir / "keys.json").read_text())["keys"]
    assert len(keys) == 2 and all(k["revoked_at"] is not None for k in keys)


@pytest.mark.skipif(not dashboards_app().exists(), reason="no dashboards app yet")
def test_killed_up_leaves_no_process_behind(tmp_path: Path) -> None:
    """kill -9 gives `vigil up` no chance to clean up: Streamlit and the decode workers must see it and exit."""
    data_dir, log = tmp_path / "store", tmp_path / "up.log"
    process, _, http_port, ui_port, _ = _start(data_dir, log, "--no-demo")
    try:
        _wait(lambda: _http_status(f"http://127.0.0.1:{http_port}/readyz") == 200, "/readyz", process)
        _wait(lambda: _http_status(f"http://127.0.0.1:{ui_port}/") == 200, "the dashboards", process)
        children = _descendants(process.pid)
        streamlit = int(re.search(r"dashboards pid=(\d+)", log.read_text()).group(1))
        assert streamlit in children and len(children) >= 2  # Streamlit and at least one decode worker
    finally:
        process.kill()
        process.wait(30)
    _assert_gone(children)
    assert not _listening(ui_port)


def test_up_and_dashboards_help() -> None:
    for command in (["up", "--help"], ["dashboards", "--help"]):
        result = subprocess.run([*VIGIL, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage: vigil" in result.stdout
    assert "--no-demo" in subprocess.run([*VIGIL, "up", "--help"], capture_output=True, text=True).stdout
