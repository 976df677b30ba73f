"""OTLP/HTTP: protobuf and JSON bodies, gzip, the spec's status codes, health and metrics endpoints."""

from __future__ import annotations

import gzip
import json
import os
import urllib.error
import urllib.request

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.selfmetrics import Histogram
from collector.server import Collector
from tests.conftest import make_config, query, wait_for
from tests.test_export_status import _good_span, _request, _span


def _post(url: str, body: bytes, content_type: str, encoding: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _json_span(trace_id: str, span_id: str) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat claude",
                                "kind": 3,
                                "startTimeUnixNano": "1790000000000000000",
                                "endTimeUnixNano": "1790000001250000000",
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "anthropic"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 80}},
                                ],
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_json_body_with_hex_ids_and_string_int64(http_url: str, config) -> None:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    status, headers, body = _post(
        f"{http_url}/v1/traces", json.dumps(_json_span(trace_id, span_id)).encode(), "application/json"
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT * FROM llm_calls"), lambda r: len(r) == 1)
    row = rows[0]
    assert (row["trace_id"], row["span_id"]) == (trace_id, span_id)
    assert (row["provider"], row["request_model"], row["input_tokens"], row["output_tokens"]) == (
        "anthropic",
        "claude-sonnet-4",
        1200,
        80,
    )
    assert row["duration_ms"] == 1250.0
    assert row["service_name"] == "json-svc"


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_protobuf_body_plain_and_gzip(http_url: str, config, encoding) -> None:
    payload = _request(_good_span(1), _good_span(2)).SerializeToString()
    body = gzip.compress(payload) if encoding else payload
    status, headers, answer = _post(f"{http_url}/v1/traces", body, "application/x-protobuf", encoding)
    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(answer) == ExportTraceServiceResponse()
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT count(*) AS n FROM spans"), lambda r: r[0]["n"] == 2)
    assert rows == [{"n": 2}]


def test_partial_success_over_http(http_url: str) -> None:
    payload = _request(_good_span(3), _span(b"\x01" * 4, b"\x02" * 8)).SerializeToString()
    status, _, answer = _post(f"{http_url}/v1/traces", payload, "application/x-protobuf")
    assert status == 200
    assert ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans == 1


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "expected"),
    [
        (b"\xff\xfe garbage", "application/x-protobuf", None, 400),
        (b"{not json", "application/json", None, 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json", None, 400),
        (b"not gzip at all", "application/x-protobuf", "gzip", 400),
        (b"", "application/x-protobuf", "br", 400),
        (b"{}", "text/plain", None, 415),
    ],
    ids=["bad-protobuf", "bad-json", "bad-hex-id", "bad-gzip", "unknown-encoding", "wrong-content-type"],
)
def test_bad_requests_get_clear_client_errors(http_url: str, body, content_type, encoding, expected) -> None:
    status, headers, answer = _post(f"{http_url}/v1/traces", body, content_type, encoding)
    assert status == expected
    if expected == 400 and content_type == "application/x-protobuf":
        assert status_pb2.Status.FromString(answer).message  # a google.rpc.Status saying what was wrong
    if expected == 400 and content_type == "application/json":
        assert json.loads(answer)["message"]
    # Still serving afterwards.
    ok = _post(f"{http_url}/v1/traces", _request(_good_span(9)).SerializeToString(), "application/x-protobuf")
    assert ok[0] == 200


def test_oversized_body_is_413_and_gzip_bombs_too(tmp_path) -> None:
    with Collector(make_config(tmp_path, max_message_mib=1)) as running:
        url = f"http://127.0.0.1:{running.http_port}/v1/traces"
        status, _, _ = _post(url, b"\x00" * (2 << 20), "application/x-protobuf")
        assert status == 413
        bomb = gzip.compress(b"\x00" * (8 << 20))  # small on the wire, 8 MiB inflated
        status, _, answer = _post(url, bomb, "application/x-protobuf", "gzip")
        assert status == 413
        assert "limit" in status_pb2.Status.FromString(answer).message


def test_overload_is_429_with_retry_after(tmp_path) -> None:
    with Collector(make_config(tmp_path, max_queue_mib=1)) as running:
        running.pipeline.reserve(2 << 20)
        url = f"http://127.0.0.1:{running.http_port}/v1/traces"
        status, headers, _ = _post(url, _request(_good_span(4)).SerializeToString(), "application/x-protobuf")
        assert status == 429
        assert int(headers["Retry-After"]) >= 1
        running.pipeline.release(2 << 20)


def test_exports_past_the_handlers_at_once_are_503_with_retry_after(tmp_path) -> None:
    """Bodies are read only as many at a time as gRPC has handlers: the rest wait a moment, then are
    turned away unread (retryable), so many senders of large requests cannot fill the memory."""
    with Collector(make_config(tmp_path, workers=2)) as running:
        slots = running._http.server.RequestHandlerClass.export_slots
        url = f"http://127.0.0.1:{running.http_port}/v1/traces"
        body = _request(_good_span(5)).SerializeToString()
        assert slots.acquire(timeout=1) and slots.acquire(timeout=1), "two slots, as configured"
        try:
            status, headers, answer = _post(url, body, "application/x-protobuf")
            assert status == 503 and int(headers["Retry-After"]) >= 1
            assert "at once" in status_pb2.Status.FromString(answer).message
        finally:
            slots.release()
            slots.release()
        assert _post(url, body, "application/x-protobuf")[0] == 200, "and taken once a slot is free"


def test_unknown_path_and_method(http_url: str) -> None:
    assert _post(f"{http_url}/v1/profiles", b"", "application/x-protobuf")[0] == 404
    assert _get(f"{http_url}/v1/traces")[0] == 405


def test_health_ready_and_metrics(http_url: str, collector: Collector) -> None:
    assert _get(f"{http_url}/healthz") == (200, "ok\n")
    assert _get(f"{http_url}/readyz") == (200, "ready\n")
    _post(
        f"{http_url}/v1/traces",
        _request(_good_span(5), _span(b"\x01", b"\x02" * 8)).SerializeToString(),
        "application/x-protobuf",
    )
    status, text = _get(f"{http_url}/metrics")
    assert status == 200
    assert "# TYPE vigil_received_spans_total counter" in text
    assert "vigil_received_spans_total 2" in text
    assert "vigil_rejected_spans_total 1" in text
    assert "# TYPE vigil_wal_bytes gauge" in text
    # The accepted request's group commit waited for one fdatasync: counted once, in cumulative buckets.
    assert "# TYPE vigil_wal_sync_seconds histogram" in text
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("vigil_wal_sync_seconds"))
    buckets = [int(v) for k, v in samples.items() if k.startswith("vigil_wal_sync_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == int(samples["vigil_wal_sync_seconds_count"]) >= 1
    assert 'vigil_wal_sync_seconds_bucket{le="+Inf"}' in samples
    assert float(samples["vigil_wal_sync_seconds_sum"]) > 0


def test_histogram_buckets_are_cumulative_and_include_their_bound() -> None:
    histogram = Histogram((0.01, 0.05))
    for value in (0.001, 0.01, 0.02, 0.05, 3.0):
        histogram.observe(value)
    assert histogram.snapshot() == ([2, 4, 5], pytest.approx(3.081))


def test_readyz_fails_when_the_store_is_not_writable(http_url: str, collector: Collector) -> None:
    real = collector.wal.directory
    collector.wal.directory = real / "gone" / "away"  # a probe write there fails, as on a lost volume
    try:
        status, text = _get(f"{http_url}/readyz")
    finally:
        collector.wal.directory = real
    assert status == 503
    assert "not writable" in text
    assert _get(f"{http_url}/readyz") == (200, "ready\n")


def test_grpc_health_service(collector: Collector) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "opentelemetry.proto.collector.trace.v1.TraceService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
