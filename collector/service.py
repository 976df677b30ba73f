"""OTLP Export, whatever the transport: parse → validate → write-ahead log → acknowledge.

Comes in: the raw bytes of an Export request (we parse them ourselves, so a malformed message
gets INVALID_ARGUMENT rather than grpc's generic INTERNAL). Goes out: the Export response, with
`partial_success` when some items were rejected, or an exception that `status_for` maps to the
OTLP answer (https://opentelemetry.io/docs/specs/otlp/#failures): trouble on our side is
retryable (UNAVAILABLE / RESOURCE_EXHAUSTED with RetryInfo), bad data is INVALID_ARGUMENT and
never retried. The gRPC and HTTP front ends both call `Ingest.export`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collector.auth import Authenticator, Unauthenticated
from collector.pipeline import Pipeline
from collector.redaction import Redactor
from collector.selfmetrics import Counters
from collector.signals import SIGNALS, Signal
from collector.wal import WalError, WriteAheadLog

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 1
# How long an Export waits for queue room before it is refused. At full load room comes back with
# every decoded request (every ~20-40 ms); refusing at once made the load generator resend each
# 0.8 MB body several times, and those resends cost more CPU than the requests that got in.
ADMIT_WAIT_S = 0.25
PROJECT_ATTRIBUTE = "vigil.project"


class Overloaded(Exception):
    """The pipeline's queue is full: the client should back off and retry."""


class Ingest:
    def __init__(
        self,
        wal: WriteAheadLog,
        pipeline: Pipeline,
        counters: Counters,
        auth: Authenticator | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.wal = wal
        self.pipeline = pipeline
        self.counters = counters
        self.auth = auth or Authenticator(None)
        self.redactor = redactor

    def authenticate(self, headers: Iterable[tuple[str, str]]) -> str | None:
        """The project the caller's key belongs to (None with auth off), or raise Unauthenticated."""
        try:
            return self.auth.project(headers)
        except Unauthenticated:
            self.counters.add(unauthenticated_requests=1)
            raise

    def export(self, signal: Signal, payload: bytes, project: str | None = None) -> Message:
        # Turn a request away before parsing it when it could not be queued anyway: under overload
        # the parse is work thrown away, taken from the pipeline that is behind.
        if not self.pipeline.wait_for_room(len(payload), ADMIT_WAIT_S):
            raise Overloaded(self.pipeline.why_full())
        request = signal.request_type.FromString(payload)
        return self.export_message(signal, request, payload, project)

    def export_message(
        self, signal: Signal, request: Message, payload: bytes | None = None, project: str | None = None
    ) -> Message:
        """Acknowledge `request` once it is durable; `payload` is its serialized form if known.

        `project` (from the caller's API key) replaces whatever project the resources claim; it
        travels inside the logged request, so a replay after a crash keeps it.
        """
        total = signal.count(request)
        rejected, reason = signal.validate(request)
        if rejected or payload is None:
            payload = request.SerializeToString()
        payload = self.sanitize(request, payload, project)
        self.counters.add(requests=1, **{f"received_{signal.name}": total, f"rejected_{signal.name}": rejected})
        if total - rejected:
            if not self.pipeline.reserve(len(payload), ADMIT_WAIT_S):
                raise Overloaded(self.pipeline.why_full())
            try:
                # Handed to the pipeline by the log itself, in log order (see WriteAheadLog.append).
                self.wal.append(
                    signal.wal_kind, payload, lambda seq: self.pipeline.submit(seq, signal.wal_kind, payload)
                )
            except BaseException:
                self.pipeline.release(len(payload))
                raise
        return signal.response(rejected, reason)

    def sanitize(self, request: Message, payload: bytes, project: str | None = None) -> bytes:
        """Redact and stamp the project: what may be written to disk (re-serialized only if changed)."""
        changed = False
        if self.redactor is not None:
            hits = self.redactor.redact_request(request, payload)
            if hits:
                self.counters.add(redacted_requests=1, **{f"redacted_{rule}": n for rule, n in hits.items()})
                changed = True
        if project is not None and stamp_project(request, project):
            changed = True
        return request.SerializeToString() if changed else payload


def stamp_project(request: Message, project: str) -> bool:
    """Set `vigil.project` on every resource, dropping what the sender claimed; False if all were right.

    A sender that already names its key's project (`OTEL_RESOURCE_ATTRIBUTES=vigil.project=NAME`)
    saves the collector a re-serialization.
    """
    changed = False
    for _, resources in request.ListFields():  # resource_spans / resource_logs / resource_metrics
        for item in resources:
            attributes = item.resource.attributes
            claims = [pair.value for pair in attributes if pair.key == PROJECT_ATTRIBUTE]
            if [(c.WhichOneof("value"), c.string_value) for c in claims] == [("string_value", project)]:
                continue
            for index in reversed(range(len(attributes))):
                if attributes[index].key == PROJECT_ATTRIBUTE:
                    del attributes[index]
            attributes.append(KeyValue(key=PROJECT_ATTRIBUTE, value=AnyValue(string_value=project)))
            changed = True
    return changed


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str, bool]:
    """(code, message, retryable) for any exception raised while handling an Export."""
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED, str(exc), False
    if isinstance(exc, DecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, f"malformed OTLP request: {exc}", False
    if isinstance(exc, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; retry later", True
    if isinstance(exc, WalError):
        return grpc.StatusCode.UNAVAILABLE, f"cannot store data right now: {exc}; retry later", True
    logger.error("unexpected error in Export", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", False


def grpc_handlers(ingest: Ingest) -> list[grpc.GenericRpcHandler]:
    handlers = []
    for signal in SIGNALS.values():

        def export(payload: bytes, context: grpc.ServicerContext, signal: Signal = signal) -> Message:
            try:
                project = ingest.authenticate(context.invocation_metadata() or ())
                return ingest.export(signal, payload, project)
            except Exception as exc:  # every failure becomes a status here, never UNKNOWN
                code, message, retry = status_for(exc)
                if retry:
                    ingest.counters.add(refused_requests=1)
                context.abort_with_status(rich_status(code, message, retry))
                raise  # unreachable: abort_with_status raises

        method = grpc.unary_unary_rpc_method_handler(
            export,
            request_deserializer=None,  # raw bytes: see the module docstring
            response_serializer=lambda message: message.SerializeToString(),
        )
        handlers.append(grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": method}))
    return handlers


def rich_status(code: grpc.StatusCode, message: str, retry: bool) -> grpc.Status:
    return rpc_status.to_status(google_status(code, message, retry))


def google_status(code: grpc.StatusCode, message: str, retry: bool) -> status_pb2.Status:
    details = []
    if retry:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_S))
        packed = AnyProto()
        packed.Pack(info)
        details.append(packed)
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
