"""OTLP/gRPC in, split by trace id, forwarded to N vigil collectors: a small stand-in for the OTel loadbalancer.

Comes in: OTLP/gRPC Export requests (traces, logs, metrics). Goes out: each request split so that every
span of one trace goes to the same backend, chosen by rendezvous (highest-random-weight) hashing of the
trace id over the backend addresses: consistent, so adding or removing a backend moves only the traces it
gains or loses, as the OpenTelemetry Collector's `loadbalancing` exporter (`routing_key: traceID`) does
with its hash ring. The two do not pick the same backend for a trace; each keeps every trace whole.
Log records go by their trace id as well (content events then land beside their spans), or by their
resource when they have none; metrics go by resource, so one resource's series stay on one collector.

The parts are forwarded as raw bytes, concurrently, with the client's metadata (API keys) and remaining
deadline. The client is answered only when every backend acknowledged its part, so an acknowledgement
from the router means what a collector's means: in a write-ahead log. If a backend fails, the client
gets its error (UNAVAILABLE when any failure is retryable) and resends the whole request; the parts that
other backends already stored come again and are deduped by key in the store.
Must not: answer OK for a part no backend acknowledged, or reorder spans within a trace.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

logger = logging.getLogger(__name__)

# The codes after which a client may send the request again (OTLP spec, "Failures" in otlp.md).
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_FORWARD_TIMEOUT_S = 30.0  # when the client set no deadline


@dataclass(frozen=True)
class Signal:
    service: str
    request: type[Message]
    response: type[Message]
    resources: str  # field names down the OTLP tree: resource_spans → scope_spans → spans
    scopes: str
    items: str
    rejected: str  # the partial_success counter
    by_trace: bool  # items carry a trace_id to route by


SIGNALS = (
    Signal("opentelemetry.proto.collector.trace.v1.TraceService", trace_pb.ExportTraceServiceRequest,
           trace_pb.ExportTraceServiceResponse, "resource_spans", "scope_spans", "spans", "rejected_spans", True),
    Signal("opentelemetry.proto.collector.logs.v1.LogsService", logs_pb.ExportLogsServiceRequest,
           logs_pb.ExportLogsServiceResponse, "resource_logs", "scope_logs", "log_records", "rejected_log_records",
           True),
    Signal("opentelemetry.proto.collector.metrics.v1.MetricsService", metrics_pb.ExportMetricsServiceRequest,
           metrics_pb.ExportMetricsServiceResponse, "resource_metrics", "scope_metrics", "metrics",
           "rejected_data_points", False),
)  # fmt: skip


def pick_backend(key: bytes, backends: Sequence[str]) -> int:
    """Rendezvous hashing: the backend whose hash with `key` is highest (stable while the set is)."""
    return max(range(len(backends)), key=lambda i: hashlib.blake2b(backends[i].encode() + b"\0" + key).digest()[:8])


def split_request(signal: Signal, request: Message, backends: Sequence[str]) -> dict[int, Message]:
    """backend index → the part of `request` that goes there (resources and scopes copied along)."""
    parts: dict[int, Message] = {}
    for resource in getattr(request, signal.resources):
        resource_key = resource.resource.SerializeToString(deterministic=True)
        copies: dict[int, Message] = {}
        for scope in getattr(resource, signal.scopes):
            groups: dict[int, list[Message]] = {}
            for item in getattr(scope, signal.items):
                key = item.trace_id if signal.by_trace and item.trace_id else resource_key
                groups.setdefault(pick_backend(key, backends), []).append(item)
            for index, items in groups.items():
                if index not in copies:
                    part = parts.setdefault(index, signal.request())
                    copies[index] = getattr(part, signal.resources).add(resource=resource.resource)
                    copies[index].schema_url = resource.schema_url
                target = getattr(copies[index], signal.scopes).add(scope=scope.scope, schema_url=scope.schema_url)
                getattr(target, signal.items).extend(items)
    return parts


class Router:
    def __init__(self, backends: Sequence[str]) -> None:
        if not backends:
            raise ValueError("the router needs at least one --backend HOST:PORT")
        self.backends = list(backends)
        self._channels = [grpc.insecure_channel(b, options=[("grpc.max_send_message_length", 64 << 20)])
                          for b in self.backends]  # fmt: skip

    def handler(self, signal: Signal) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        method = f"/{signal.service}/Export"
        calls = [channel.unary_unary(method, request_serializer=None, response_deserializer=None)
                 for channel in self._channels]  # fmt: skip

        def export(payload: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                request = signal.request.FromString(payload)
            except DecodeError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an OTLP {signal.request.__name__}: {exc}")
            parts = split_request(signal, request, self.backends)
            if len(parts) == 1:  # the common case for small requests: forward the bytes as they came
                parts = {next(iter(parts)): payload}
            remaining = context.time_remaining()
            timeout = _FORWARD_TIMEOUT_S if remaining is None else max(remaining - 0.05, 0.01)
            metadata = [(k, v) for k, v in context.invocation_metadata() if not k.startswith(("grpc-", ":"))]
            sent = {
                index: calls[index].future(
                    part if isinstance(part, bytes) else part.SerializeToString(), timeout=timeout, metadata=metadata
                )
                for index, part in parts.items()
            }
            return self._answer(signal, sent, context)

        return export

    def _answer(self, signal: Signal, sent: dict[int, grpc.Future], context: grpc.ServicerContext) -> bytes:
        answer = signal.response()
        failures = []
        for index, future in sent.items():
            try:
                reply = signal.response.FromString(future.result())
            except grpc.RpcError as error:
                failures.append((self.backends[index], error.code(), error.details()))
                continue
            if reply.HasField("partial_success"):
                rejected = getattr(reply.partial_success, signal.rejected)
                total = getattr(answer.partial_success, signal.rejected) + rejected
                setattr(answer.partial_success, signal.rejected, total)
                if reply.partial_success.error_message:
                    answer.partial_success.error_message = reply.partial_success.error_message
        if failures:
            codes = {code for _, code, _ in failures}
            code = codes.pop() if len(codes) == 1 else grpc.StatusCode.UNAVAILABLE
            if len(codes) > 1 and not codes & RETRYABLE:
                code = grpc.StatusCode.INVALID_ARGUMENT
            detail = "; ".join(f"backend {b} answered {c.name}: {d}" for b, c, d in failures)
            ok = len(sent) - len(failures)
            logger.warning("forward failed parts=%d ok=%d %s", len(sent), ok, detail)
            context.abort(code, f"{detail} ({ok} of {len(sent)} parts stored; resending the request is safe)")
        return answer.SerializeToString()

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


def serve_router(listen: str, backends: Sequence[str], workers: int = 16) -> tuple[grpc.Server, Router, int]:
    """Start the router on `listen` (port 0: a free one); return the server, the router and the bound port."""
    router = Router(backends)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="router"),
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)],
    )
    for signal in SIGNALS:
        handler = grpc.unary_unary_rpc_method_handler(router.handler(signal))
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(signal.service, {"Export": handler})])
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if not port:
        router.close()
        raise OSError(f"cannot listen on {listen}: the port is taken or the address is not this machine's")
    server.start()
    logger.info("router listening address=%s port=%d backends=%s", listen, port, ",".join(backends))
    return server, router, port
