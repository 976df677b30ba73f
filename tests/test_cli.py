"""The `vigil` command as a user runs it: a real collector process, SIGTERM, and `vigil query`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

VIGIL = [sys.executable, "-m", "vigil"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "collector exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"collector did not listen on {port}")


def _vigil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VIGIL, *args], capture_output=True, text=True, timeout=60)


def test_collector_process_sigterm_flushes_then_query_formats(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "store", _free_port()
    process = subprocess.Popen(
        [
            *VIGIL,
            "collector",
            "--data-dir",
            str(data_dir),
            "--grpc-listen",
            f"127.0.0.1:{port}",
            "--http-listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(port, process)
        provider = TracerProvider(resource=Resource.create({"service.name": "cli-test"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
        tracer = provider.get_tracer("t")
        for i in range(3):
            with tracer.start_as_current_span(
                "embeddings text-embedding-3-small",
                attributes={
                    "gen_ai.operation.name": "embeddings",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "text-embedding-3-small",
                    "gen_ai.usage.input_tokens": 10 + i,
                },
            ):
                pass
        provider.shutdown()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "OTLP/gRPC on 127.0.0.1" in out

    sql = "SELECT operation, request_model, input_tokens FROM llm_calls ORDER BY input_tokens"
    result = _vigil("query", "--data-dir", str(data_dir), "--format", "json", sql)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"operation": "embeddings", "request_model": "text-embedding-3-small", "input_tokens": n} for n in (10, 11, 12)
    ]
    csv_out = _vigil("query", "--data-dir", str(data_dir), "--format", "csv", sql).stdout.splitlines()
    assert csv_out == ["operation,request_model,input_tokens"] + [
        f"embeddings,text-embedding-3-small,{n}" for n in (10, 11, 12)
    ]
    table = _vigil("query", "--data-dir", str(data_dir), "SELECT count(*) AS calls FROM llm_calls").stdout
    assert "calls" in table and "3" in table


def test_query_errors_tell_what_to_do(tmp_path: Path) -> None:
    missing = _vigil("query", "--data-dir", str(tmp_path / "nowhere"), "SELECT 1")
    assert missing.returncode == 2
    assert "no store at" in missing.stderr and "vigil up" in missing.stderr
    (tmp_path / "empty").mkdir()
    bad_sql = _vigil("query", "--data-dir", str(tmp_path / "empty"), "SELEC 1")
    assert bad_sql.returncode == 1
    assert "syntax error" in bad_sql.stderr.lower()
    empty = _vigil("query", "--data-dir", str(tmp_path / "empty"), "--format", "json", "SELECT * FROM tasks")
    assert json.loads(empty.stdout) == []


def test_help_everywhere() -> None:
    for args in ([], ["collector"], ["query"]):
        result = _vigil(*args, "--help")
        assert result.returncode == 0
        assert "usage: vigil" in result.stdout
