"""`vigil router` between the real OTel SDK exporter and two real collectors: each trace lands whole on one.

The SDK's BatchSpanProcessor packs spans of many traces into each ExportTraceServiceRequest; the router
splits every request by trace id. Each collector has its own local store here, so where a span landed
is visible: every trace must be complete in exactly one store, and the two stores together hold every
span sent. A backend that is down makes the router answer UNAVAILABLE (retryable) naming it, after the
other backend stored its part.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from collector.router import SIGNALS, pick_backend, serve_router, split_request
from collector.server import Collector
from tests.conftest import make_config, query
from tests.test_crash_recovery import EXPORT, build_request


@pytest.fixture
def two_collectors(tmp_path: Path):
    configs = [make_config(tmp_path / name, decode_workers=0, flush_interval_s=0.1) for name in ("a", "b")]
    with Collector(configs[0]) as a, Collector(configs[1]) as b:
        yield [a, b], [Path(c.store.data_dir) for c in configs]


def _traces_by_store(stores: list[Path]) -> list[dict[str, int]]:
    rows = [query(store, "SELECT trace_id, count(*) AS n FROM spans GROUP BY trace_id") for store in stores]
    return [{row["trace_id"]: row["n"] for row in found} for found in rows]


def test_each_trace_lands_whole_on_one_collector(two_collectors) -> None:
    collectors, stores = two_collectors
    backends = [f"127.0.0.1:{c.grpc_port}" for c in collectors]
    server, router, port = serve_router("127.0.0.1:0", backends)
    provider = TracerProvider(resource=Resource.create({"service.name": "router-test"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True), max_export_batch_size=64)
    )
    tracer = provider.get_tracer("router-test")
    sent: dict[str, int] = {}
    try:
        for number in range(60):
            with tracer.start_as_current_span(f"task {number}") as root:
                for call in range(number % 3 + 1):
                    with tracer.start_as_current_span(f"chat {call}"):
                        pass
            sent[format(root.get_span_context().trace_id, "032x")] = number % 3 + 2
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()
        server.stop(5).wait()
        router.close()
    for collector in collectors:
        collector.pipeline.close()  # write every acknowledged span (the fixture's exit finds the queue empty)
    landed = _traces_by_store(stores)
    assert all(landed), "with 60 traces both collectors get some"
    assert not landed[0].keys() & landed[1].keys(), "a trace was split over two collectors"
    assert landed[0] | landed[1] == sent, "every span of every trace, once, in one store"
    for trace_id in sent:
        assert trace_id in landed[pick_backend(bytes.fromhex(trace_id), backends)]


def test_a_backend_that_is_down_gets_a_retryable_error_naming_it(tmp_path: Path) -> None:
    config = make_config(tmp_path / "up", decode_workers=0)
    with Collector(config) as alive:
        down = f"127.0.0.1:{_free_port()}"
        backends = [f"127.0.0.1:{alive.grpc_port}", down]
        server, router, port = serve_router("127.0.0.1:0", backends)
        import random

        rng = random.Random(1)
        requests = [build_request(client, n, rng) for client in range(2) for n in range(20)]
        request = SIGNALS[0].request()
        for payload, _, _ in requests:
            request.MergeFromString(payload)  # 40 traces in one request: both backends get a part
        parts = split_request(SIGNALS[0], request, backends)
        assert set(parts) == {0, 1}
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
                with pytest.raises(grpc.RpcError) as failed:
                    export(request.SerializeToString(), timeout=10)
                with pytest.raises(grpc.RpcError) as garbage:
                    export(b"\xff not protobuf", timeout=10)
        finally:
            server.stop(5).wait()
            router.close()
        alive.pipeline.close()
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down in failed.value.details() and "resending the request is safe" in failed.value.details()
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stored = query(config.store.data_dir, "SELECT count(*) AS n FROM spans")[0]["n"]
    assert stored == sum(len(span.spans) for rs in parts[0].resource_spans for span in rs.scope_spans)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
