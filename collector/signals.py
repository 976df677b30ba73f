"""The OTLP signals the collector accepts, described once for every transport and the pipeline.

A `Signal` names the protobuf types, the gRPC service, the HTTP path, the write-ahead-log record
kind, and the functions that count, validate and decode its requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.decode_logs import count_logs, decode_logs, validate_logs
from collector.decode_metrics import count_points, decode_metrics, validate_metrics
from collector.decode_traces import decode_traces, read_payload, validate_traces


@dataclass(frozen=True)
class Signal:
    name: str  # what the counters call one item: spans, log_records, data_points
    wal_kind: int
    grpc_service: str
    http_path: str
    request_type: type[Message]
    response_type: type[Message]
    partial_success_type: type[Message]
    rejected_field: str
    count: Callable[[Message], int]
    validate: Callable[[Message], tuple[int, str]]  # drops bad items in place → (rejected, reason)
    decode: Callable[[Any, int], dict[str, pa.Table]]  # what `read` returns, or a parsed request
    read: Callable[[bytes], Any] | None = None  # serialized request → what `decode` takes; default: parse it

    def decode_serialized(self, payload: bytes, received_at_ns: int) -> dict[str, pa.Table]:
        request = self.read(payload) if self.read else self.request_type.FromString(payload)
        return self.decode(request, received_at_ns)

    def response(self, rejected: int, reason: str) -> Message:
        if not rejected:
            return self.response_type()
        partial = self.partial_success_type(**{self.rejected_field: rejected, "error_message": reason})
        return self.response_type(partial_success=partial)


TRACES = Signal(
    name="spans",
    wal_kind=1,
    grpc_service="opentelemetry.proto.collector.trace.v1.TraceService",
    http_path="/v1/traces",
    request_type=ExportTraceServiceRequest,
    response_type=ExportTraceServiceResponse,
    partial_success_type=ExportTracePartialSuccess,
    rejected_field="rejected_spans",
    count=lambda request: sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans),
    validate=validate_traces,
    decode=decode_traces,
    read=read_payload,
)

LOGS = Signal(
    name="log_records",
    wal_kind=2,
    grpc_service="opentelemetry.proto.collector.logs.v1.LogsService",
    http_path="/v1/logs",
    request_type=ExportLogsServiceRequest,
    response_type=ExportLogsServiceResponse,
    partial_success_type=ExportLogsPartialSuccess,
    rejected_field="rejected_log_records",
    count=count_logs,
    validate=validate_logs,
    decode=decode_logs,
)

METRICS = Signal(
    name="data_points",
    wal_kind=3,
    grpc_service="opentelemetry.proto.collector.metrics.v1.MetricsService",
    http_path="/v1/metrics",
    request_type=ExportMetricsServiceRequest,
    response_type=ExportMetricsServiceResponse,
    partial_success_type=ExportMetricsPartialSuccess,
    rejected_field="rejected_data_points",
    count=count_points,
    validate=validate_metrics,
    decode=decode_metrics,
)

SIGNALS: dict[int, Signal] = {signal.wal_kind: signal for signal in (TRACES, LOGS, METRICS)}
