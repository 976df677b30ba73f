"""API keys: the real collector refuses callers without a valid key and stores data under the key's project."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from collector.server import Collector
from store.config import Config, ConfigError, load_config
from store.keys import create_key, keys_path, load_keys, revoke_key
from tests.conftest import collector_settings, query, wait_for
from tests.test_export_status import _good_span, _request
from vigil.cli import main


def secure_config(data_dir: Path, auth: dict[str, Any] | None = None, **collector: Any) -> Config:
    settings = collector_settings(decode_workers=0) | collector
    overrides = {"store": {"data_dir": str(data_dir)}, "collector": settings, "auth": auth or {"enabled": True}}
    return load_config(env={}, overrides=overrides)


def send_span(exporter, name: str, resource: dict[str, str] | None = None) -> SpanExportResult:
    provider = TracerProvider(resource=Resource.create({"service.name": "agent", **(resource or {})}))
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span) -> None:  # keep the exporter's answer
            results.append(exporter.export([span]))

    provider.add_span_processor(Recording(exporter))
    with provider.get_tracer("t").start_as_current_span(name):
        pass
    provider.shutdown()
    return results[0]


@pytest.fixture
def secured(tmp_path: Path):
    config = secure_config(tmp_path / "data")
    _, key_a = create_key(keys_path(config), "project-a", "ci")
    _, key_b = create_key(keys_path(config), "project-b")
    with Collector(config) as running:
        yield running, config, key_a, key_b


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_keys_are_stored_hashed_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry, key = create_key(path, "shop", "checkout service")
    assert key.startswith("vgl_") and len(key) > 40
    assert key not in path.read_text(), "only the hash may be stored"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [k.project for k in load_keys(path)] == ["shop"]
    assert revoke_key(path, entry.id).revoked_at is not None
    with pytest.raises(ConfigError, match="no API key with id"):
        revoke_key(path, "nope")


def test_grpc_without_or_with_a_wrong_key_is_unauthenticated_and_stores_nothing(secured) -> None:
    collector, config, _, _ = secured
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stub = TraceServiceStub(channel)
        for metadata in [(), (("authorization", "Bearer vgl_wrong"),), (("x-api-key", "vgl_wrong"),)]:
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(_request(_good_span(1)), metadata=metadata, timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "API key" in caught.value.details()
    assert collector.wal.bytes_written == 0, "nothing may reach the write-ahead log"
    assert collector.counters.get("unauthenticated_requests") == 3
    assert not list(Path(config.store.data_dir).glob("spans/**/*.parquet"))


def test_http_without_a_key_gets_401_and_outcomes_need_one_too(secured) -> None:
    collector, _, key_a, _ = secured
    base = f"http://127.0.0.1:{collector.http_port}"
    body = _request(_good_span(1)).SerializeToString()
    status, _, headers = _post(f"{base}/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    verdict = json.dumps({"trace_id": "ab" * 16, "outcome": "success"}).encode()
    assert _post(f"{base}/v1/outcomes", verdict, {"Content-Type": "application/json"})[0] == 401
    wrong = {"Content-Type": "application/json", "x-api-key": "vgl_nope"}
    assert _post(f"{base}/v1/outcomes", verdict, wrong)[0] == 401
    good = {"Content-Type": "application/json", "x-api-key": key_a}
    assert _post(f"{base}/v1/outcomes", verdict, good)[0] == 200
    assert collector.wal.bytes_written == 0


def test_the_key_decides_the_project_whatever_the_resource_claims(secured) -> None:
    collector, config, key_a, key_b = secured
    grpc_a = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, headers=(("authorization", f"Bearer {key_a}"),)
    )
    http_b = HttpSpanExporter(
        endpoint=f"http://127.0.0.1:{collector.http_port}/v1/traces", headers={"x-api-key": key_b}
    )
    # Each sender claims the other's project in its resource: the key wins.
    assert send_span(grpc_a, "from-a", {"vigil.project": "project-b"}) == SpanExportResult.SUCCESS
    assert send_span(http_b, "from-b", {"vigil.project": "project-a"}) == SpanExportResult.SUCCESS
    rows = wait_for(
        lambda: query(config.store.data_dir, "SELECT name, project, resource_attributes FROM spans ORDER BY name"),
        lambda r: len(r) == 2,
    )
    assert [(r["name"], r["project"]) for r in rows] == [("from-a", "project-a"), ("from-b", "project-b")]
    assert json.loads(rows[0]["resource_attributes"])["vigil.project"] == "project-a"


def test_project_survives_a_crash_and_replay_of_the_wal(tmp_path: Path) -> None:
    config = secure_config(tmp_path / "data", flush_interval_s=3600)
    _, key = create_key(keys_path(config), "replayed")
    collector = Collector(config).__enter__()
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, headers={"x-api-key": key})
    assert send_span(exporter, "logged-only", {"vigil.project": "liar"}) == SpanExportResult.SUCCESS
    # A crash: nothing was flushed (an hour-long flush interval), only the WAL holds the span.
    collector._server.stop(0)
    collector._http.stop()
    collector.wal.close()
    assert not list((tmp_path / "data").glob("spans/**/*.parquet"))
    with Collector(config):
        pass  # replays the WAL on start
    rows = query(config.store.data_dir, "SELECT name, project FROM spans")
    assert rows == [{"name": "logged-only", "project": "replayed"}]


def test_revoked_key_is_refused_without_restart(secured) -> None:
    collector, config, key_a, _ = secured
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, headers={"x-api-key": key_a}
    )
    assert send_span(exporter, "before") == SpanExportResult.SUCCESS
    key_id = next(k.id for k in load_keys(keys_path(config)) if k.project == "project-a")
    main_args = ["keys", "revoke", key_id, "--data-dir", config.store.data_dir]
    with pytest.raises(SystemExit) as done:
        main(main_args)
    assert done.value.code == 0
    assert send_span(exporter, "after") == SpanExportResult.FAILURE
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT name FROM spans"), lambda r: len(r) == 1)
    assert rows == [{"name": "before"}]


def test_keys_cli_prints_the_key_once_and_lists_without_it(tmp_path: Path, capsys) -> None:
    data = str(tmp_path / "data")
    with pytest.raises(SystemExit):
        main(["keys", "create", "--project", "shop", "--name", "web", "--data-dir", data])
    key = capsys.readouterr().out.strip()
    assert key.startswith("vgl_")
    with pytest.raises(SystemExit):
        main(["keys", "list", "--format", "json", "--data-dir", data])
    listed = capsys.readouterr().out
    assert key not in listed
    assert [(k["project"], k["name"], k["active"]) for k in json.loads(listed)] == [("shop", "web", True)]


@pytest.mark.parametrize("setting", ["grpc_listen", "http_listen"])
def test_non_loopback_without_auth_is_refused_unless_allowed(tmp_path: Path, setting: str) -> None:
    config = secure_config(tmp_path / "data", auth={"enabled": False}, **{setting: "0.0.0.0:0"})
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0:0 without authentication"):
        Collector(config).__enter__()
    allowed = secure_config(
        tmp_path / "data", auth={"enabled": False, "allow_unauthenticated": True}, **{setting: "0.0.0.0:0"}
    )
    with Collector(allowed) as running:
        assert running.grpc_port and running.http_port
    with Collector(secure_config(tmp_path / "data", **{setting: "0.0.0.0:0"})) as running:  # auth on: fine
        assert running.grpc_port


def test_cli_refuses_non_loopback_with_a_clear_message(tmp_path: Path) -> None:
    # A process of its own, as `vigil collector` always runs: it keeps pandas out of its process for good.
    listen = ["--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"]
    done = subprocess.run([sys.executable, "-m", "vigil", "collector", "--data-dir", str(tmp_path), *listen],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--allow-unauthenticated" in done.stderr


def test_a_verdict_judges_only_traces_of_its_keys_project(secured) -> None:
    """A key's verdict on another project's trace is stored but judges nothing; one from the CLI judges any."""
    collector, config, key_a, key_b = secured
    base = f"http://127.0.0.1:{collector.http_port}"
    exporter = HttpSpanExporter(endpoint=f"{base}/v1/traces", headers={"x-api-key": key_b})
    assert send_span(exporter, "task-of-b") == SpanExportResult.SUCCESS
    root = config.store.data_dir
    trace_id = wait_for(lambda: query(root, "SELECT trace_id FROM tasks"), bool)[0]["trace_id"]

    def post(key: str, outcome: str) -> None:
        body = json.dumps({"trace_id": trace_id, "outcome": outcome}).encode()
        assert _post(f"{base}/v1/outcomes", body, {"Content-Type": "application/json", "x-api-key": key})[0] == 200

    def judged() -> tuple[str, str]:
        row = query(root, "SELECT outcome, outcome_source FROM tasks")[0]
        return row["outcome"], row["outcome_source"]

    post(key_a, "failure")  # project-a may not judge project-b's task
    verdicts = "SELECT project, outcome FROM outcomes"
    assert wait_for(lambda: query(root, verdicts), bool) == [{"project": "project-a", "outcome": "failure"}]
    assert judged() == ("unknown", "none")
    post(key_b, "success")
    assert judged() == ("success", "verdict:http")
    with pytest.raises(SystemExit, match="0"):
        main(["outcome", "--data-dir", root, trace_id, "failure", "--project", "project-a"])
    assert judged() == ("success", "verdict:http")  # the CLI can be scoped too
    with pytest.raises(SystemExit, match="0"):
        main(["outcome", "--data-dir", root, trace_id, "failure"])  # the newest, for any project
    assert judged() == ("failure", "verdict:cli")
