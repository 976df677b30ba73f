"""What the collector answers for each kind of input, per the OTLP failure rules."""

from __future__ import annotations

import os

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.server import Collector
from tests.conftest import make_config, query, wait_for

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _span(trace_id: bytes, span_id: bytes, **attrs: object) -> Span:
    values = []
    for key, value in attrs.items():
        if isinstance(value, int):
            values.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            values.append(KeyValue(key=key, value=AnyValue(string_value=str(value))))
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        name="chat m",
        start_time_unix_nano=1_790_000_000_000_000_000,
        end_time_unix_nano=1_790_000_000_500_000_000,
        attributes=values,
    )


def _request(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])])


def _export(channel: grpc.Channel, payload: bytes) -> ExportTraceServiceResponse:
    call = channel.unary_unary(
        EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
    )
    return call(payload, timeout=10)


def _good_span(n: int) -> Span:
    return _span(os.urandom(16), n.to_bytes(8, "big"), **{"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})


def test_malformed_protobuf_is_invalid_argument_and_server_keeps_serving(channel, config) -> None:
    with pytest.raises(grpc.RpcError) as error:
        _export(channel, b"\xff\xff\xff\xff not a protobuf")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed" in error.value.details()
    assert _export(channel, _request(_good_span(1)).SerializeToString()) == ExportTraceServiceResponse()


def test_bad_spans_are_rejected_through_partial_success(channel, config) -> None:
    good, bad_trace, bad_span = _good_span(1), _span(b"\x01" * 3, b"\x02" * 8), _span(os.urandom(16), bytes(8))
    response = _export(channel, _request(good, bad_trace, bad_span).SerializeToString())
    assert response.partial_success.rejected_spans == 2
    assert "trace_id must be 16 non-zero bytes" in response.partial_success.error_message
    assert "span_id must be 8 non-zero bytes" in response.partial_success.error_message
    rows = wait_for(lambda: query(config.store.data_dir, "SELECT span_id FROM spans"), lambda r: len(r) == 1)
    assert rows == [{"span_id": good.span_id.hex()}], "the good span is stored, the bad ones are not"


def test_unknown_attributes_and_wrong_types_are_kept_not_fatal(channel, config) -> None:
    weird = _span(os.urandom(16), b"\x07" * 8, **{"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": "lots"})
    weird.attributes.append(KeyValue(key="x.bytes", value=AnyValue(bytes_value=b"\x00\x01")))
    weird.attributes.append(KeyValue(key="x.empty", value=AnyValue()))
    assert _export(channel, _request(weird).SerializeToString()) == ExportTraceServiceResponse()
    rows = wait_for(
        lambda: query(config.store.data_dir, "SELECT mapping, input_tokens, unmapped_fields FROM llm_calls"),
        lambda r: len(r) == 1,
    )
    assert rows[0]["input_tokens"] is None, "a token count that is not a number is never silently 0"
    assert rows[0]["mapping"] == "unmapped"
    attrs = query(config.store.data_dir, "SELECT attributes->>'$.\"x.bytes\"' AS b FROM spans")
    assert attrs == [{"b": "0001"}]


def test_oversized_message_is_refused_clearly(tmp_path) -> None:
    with Collector(make_config(tmp_path, max_message_mib=1)) as running:
        big = _span(os.urandom(16), b"\x03" * 8, **{"gen_ai.input.messages": "x" * (2 << 20)})
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as error:
                _export(channel, _request(big).SerializeToString())
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in error.value.details()
            # Still serving after the refusal.
            assert _export(channel, _request(_good_span(4)).SerializeToString()) == ExportTraceServiceResponse()


def test_full_queue_answers_resource_exhausted_with_retry_info(tmp_path) -> None:
    with Collector(make_config(tmp_path, max_queue_mib=1)) as running:
        running.pipeline.reserve(2 << 20)  # the write path has fallen behind by 2 MiB
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as error:
                _export(channel, _request(_good_span(5)).SerializeToString())
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            status = rpc_status.from_call(error.value)
            retry = error_details_pb2.RetryInfo()
            assert status is not None and status.details[0].Unpack(retry)
            assert retry.retry_delay.seconds >= 1
            running.pipeline.release(2 << 20)
            assert _export(channel, _request(_good_span(6)).SerializeToString()) == ExportTraceServiceResponse()
        assert running.counters.get("refused_requests") == 1


def test_duplicate_exports_appear_once(channel, config) -> None:
    payload = _request(_good_span(8), _good_span(9)).SerializeToString()
    for _ in range(3):  # an exporter retrying after a lost ack
        _export(channel, payload)
    rows = wait_for(
        lambda: query(config.store.data_dir, "SELECT count(*) AS n FROM spans_raw"), lambda r: r[0]["n"] == 6
    )
    assert rows == [{"n": 6}]
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM spans") == [{"n": 2}]
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM llm_calls") == [{"n": 2}]
