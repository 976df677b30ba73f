"""TraceService/Export: parse → validate → write-ahead log → acknowledge → hand to the pipeline.

Comes in: the raw bytes of an ExportTraceServiceRequest (we parse them ourselves, so a malformed
message gets INVALID_ARGUMENT rather than grpc's generic INTERNAL). Goes out: an
ExportTraceServiceResponse, with `partial_success` when some spans were rejected, or a status
chosen in `_status_for` by the OTLP rules
(https://opentelemetry.io/docs/specs/otlp/#failures): retryable trouble on our side is
UNAVAILABLE / RESOURCE_EXHAUSTED with RetryInfo, bad data is INVALID_ARGUMENT and never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.otlp_decode import validate_traces
from collector.pipeline import KIND_TRACES, Pipeline
from collector.selfmetrics import Counters
from collector.wal import WalError, WriteAheadLog

logger = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
RETRY_AFTER_S = 1


class Overloaded(Exception):
    """The pipeline's queue is full: the client should back off and retry."""


class TraceService:
    def __init__(self, wal: WriteAheadLog, pipeline: Pipeline, counters: Counters) -> None:
        self.wal = wal
        self.pipeline = pipeline
        self.counters = counters

    def export(self, payload: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        try:
            return self._export(payload)
        except Exception as exc:  # every failure becomes a status here, never UNKNOWN
            code, message, retry = _status_for(exc)
            if retry:
                self.counters.add(refused_requests=1)
            context.abort_with_status(_rich_status(code, message, retry))
            raise  # unreachable: abort_with_status raises

    def _export(self, payload: bytes) -> ExportTraceServiceResponse:
        request = ExportTraceServiceRequest.FromString(payload)
        total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        rejected, reason = validate_traces(request)
        if rejected:
            payload = request.SerializeToString()
        self.counters.add(requests=1, received_spans=total, rejected_spans=rejected)
        if total - rejected:
            if not self.pipeline.reserve(len(payload)):
                raise Overloaded(f"ingest queue full ({self.pipeline.queued_bytes} bytes waiting)")
            try:
                seq = self.wal.append(KIND_TRACES, payload)
            except BaseException:
                self.pipeline.release(len(payload))
                raise
            self.pipeline.submit(seq, KIND_TRACES, request, len(payload))
        if not rejected:
            return ExportTraceServiceResponse()
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=reason)
        )

    def handlers(self) -> grpc.GenericRpcHandler:
        export: Callable = grpc.unary_unary_rpc_method_handler(
            self.export,
            request_deserializer=None,  # raw bytes: see the module docstring
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": export})


def _status_for(exc: Exception) -> tuple[grpc.StatusCode, str, bool]:
    """(code, message, retryable) for any exception raised while handling an Export."""
    if isinstance(exc, DecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, f"malformed ExportTraceServiceRequest: {exc}", False
    if isinstance(exc, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; retry later", True
    if isinstance(exc, WalError):
        return grpc.StatusCode.UNAVAILABLE, f"cannot store data right now: {exc}; retry later", True
    logger.exception("unexpected error in Export")
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", False


def _rich_status(code: grpc.StatusCode, message: str, retry: bool) -> grpc.Status:
    details = []
    if retry:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_S))
        packed = AnyProto()
        packed.Pack(info)
        details.append(packed)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(status)
