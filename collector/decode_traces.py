"""ExportTraceServiceRequest → Arrow tables for `spans` and `llm_calls`.

Comes in: a trace request, parsed or serialized. Goes out: `pa.Table`s matching `store.schema`,
one row per span and one per LLM call. Pure, no I/O. `validate_traces` runs first, on the request
path, so that bad spans are reported to the sender through `partial_success` instead of vanishing.
An LLM span's prompt and completion attributes go to its `llm_calls` row only (see _CONTENT_KEYS).

A serialized request is read by the compiled `collector._otlp_wire` when it was built (the
install compiles it; see setup.py), else parsed and walked by `read_request`; both give the same
plain values, which `tests/test_otlp_wire.py` holds them to.
"""

from __future__ import annotations

import logging
import operator
import re
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.attributes import decode_attributes, decode_uint64, resource_columns
from collector.conventions import dumps
from collector.normalize import SpanFacts, normalize_llm_call, promoted_fields
from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA

try:
    from collector import _otlp_wire  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the protobuf runtime reads requests instead
    _otlp_wire = None
    logging.getLogger(__name__).warning(
        "collector._otlp_wire is not built: trace requests cost ~15% more CPU to decode. "
        "Install a C compiler (apt-get install gcc) and run `uv sync --reinstall-package vigil`."
    )

_KINDS = {
    Span.SPAN_KIND_UNSPECIFIED: "unspecified",
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
_STATUS = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}
# Attributes that tell what a non-LLM span does in an agent, by convention.
_OPERATION_KINDS = {"execute_tool": "tool", "invoke_agent": "agent", "create_agent": "agent"}
# All-zero ids, raw (a parsed request) and as hex (what decode_traces reads).
_ZERO_IDS = frozenset({bytes(16), bytes(8), "0" * 32, "0" * 16})


def validate_traces(request: ExportTraceServiceRequest) -> tuple[int, str]:
    """Drop spans that cannot be stored (bad ids) from `request`; return (rejected, reason)."""
    rejected, reasons = 0, set()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            keep = []
            for span in scope_spans.spans:
                reason = _invalid_reason(span.trace_id, span.span_id, span.parent_span_id, 1)
                if reason:
                    rejected += 1
                    reasons.add(reason)
                else:
                    keep.append(span)
            if len(keep) != len(scope_spans.spans):
                del scope_spans.spans[:]
                scope_spans.spans.extend(keep)
    return rejected, "; ".join(sorted(reasons))


def _invalid_reason(trace_id: bytes | str, span_id: bytes | str, parent_span_id: bytes | str, width: int) -> str:
    """Why a span's ids cannot be stored; `width`: 1 for raw ids, 2 for hex."""
    if len(trace_id) != 16 * width or trace_id in _ZERO_IDS:
        return "trace_id must be 16 non-zero bytes"
    if len(span_id) != 8 * width or span_id in _ZERO_IDS:
        return "span_id must be 8 non-zero bytes"
    if parent_span_id and len(parent_span_id) != 8 * width:
        return "parent_span_id must be empty or 8 bytes"
    return ""


def read_payload(payload: bytes) -> list[tuple]:
    """A serialized request as the plain values `read_request` describes; raises ValueError if malformed."""
    if _otlp_wire is not None:
        return _otlp_wire.read_trace_request(payload)
    return read_request(ExportTraceServiceRequest.FromString(payload))


def read_request(request: ExportTraceServiceRequest) -> list[tuple]:
    """[(resource attributes, [(scope name, scope version, [span, ...])])], a span as the tuple
    `_span_values` builds: what `collector._otlp_wire` reads straight from the bytes."""
    return [
        (
            decode_attributes(resource_spans.resource.attributes),
            [
                (scope_spans.scope.name, scope_spans.scope.version, [_span_values(span) for span in scope_spans.spans])
                for scope_spans in resource_spans.scope_spans
            ],
        )
        for resource_spans in request.resource_spans
    ]


def _span_values(span: Span) -> tuple:
    status = span.status
    events = [
        {"time": event.time_unix_nano, "name": event.name, "attributes": decode_attributes(event.attributes)}
        for event in span.events
    ]
    links = [
        {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "attributes": decode_attributes(link.attributes),
        }
        for link in span.links
    ]
    return (
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex(),
        span.trace_state,
        span.name,
        span.kind,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        decode_attributes(span.attributes),
        events,
        links,
        status.code,
        status.message,
    )


def decode_traces(request: ExportTraceServiceRequest | list[tuple], received_at_ns: int) -> dict[str, pa.Table]:
    """`request`: parsed, or what `read_payload` made of its bytes."""
    resources = read_request(request) if isinstance(request, ExportTraceServiceRequest) else request
    # Rows are tuples in schema order, turned into columns once per request: building Arrow
    # column by column costs about half of `pa.Table.from_pylist` over row dicts.
    spans: list[tuple] = []
    calls: list[tuple] = []
    for resource_attributes, scopes in resources:
        common = resource_columns(resource_attributes, received_at_ns)
        owner = {"service_name": common["service_name"], "project": common["project"]}
        for scope_name, scope_version, scope_spans in scopes:
            context = (common, scope_name, scope_version or None, owner)
            for span in scope_spans:
                if _invalid_reason(span[0], span[1], span[2], 2):
                    continue
                row, call = _decode_span(span, context, received_at_ns)
                spans.append(row)
                if call is not None:
                    calls.append(call)
    return {"spans": _table(spans, SPANS_SCHEMA), "llm_calls": _table(calls, LLM_CALLS_SCHEMA)}


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    if not rows:
        return schema.empty_table()
    columns = zip(*rows, strict=True)
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


# An llm_calls row in schema order, from the normalizer's dict with every column set (KeyError if one is not).
_llm_call_row = operator.itemgetter(*LLM_CALLS_SCHEMA.names)
# The order of the tuple `_decode_span` builds for a `spans` row; a schema change must change both.
_SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "start_time", "end_time",
    "duration_ms", "status_code", "status_message", "service_name", "scope_name", "scope_version", "project",
    "prompt_name", "prompt_version", "session_id", "user_id", "genai_kind", "resource_attributes", "attributes",
    "events", "links", "received_at",
)  # fmt: skip
if tuple(SPANS_SCHEMA.names) != _SPAN_COLUMNS:
    raise ImportError("collector.decode_traces builds spans rows in an order that no longer matches SPANS_SCHEMA")


def _decode_span(span: tuple, context: tuple, received_at_ns: int) -> tuple[tuple, tuple | None]:
    """One `spans` row and, for an LLM call, one `llm_calls` row, as tuples in schema order."""
    common, scope_name, scope_version, owner = context
    (
        trace_id, span_id, parent_span_id, trace_state, name, kind_number, start_ns, end_ns,
        attrs, events, links, status_number, status_message,
    ) = span  # fmt: skip
    status_code = _STATUS.get(status_number, "unset")
    kind = _KINDS.get(kind_number, "unspecified")
    facts = SpanFacts(name, kind, status_code, status_message, scope_name, events)
    call = normalize_llm_call(attrs, facts)
    parent_span_id = parent_span_id or None
    start_time, end_time = decode_uint64(start_ns), decode_uint64(end_ns)  # None past 2262: see decode_uint64
    duration_ms = max(end_ns - start_ns, 0) / 1e6
    # The normalizer already read the promoted fields of an LLM call.
    promoted = call if call is not None else promoted_fields(attrs)
    row = (
        trace_id,
        span_id,
        parent_span_id,
        trace_state or None,
        name,
        kind,
        start_time,
        end_time,
        duration_ms,
        status_code,
        status_message or None,
        common["service_name"],
        scope_name,
        scope_version,
        common["project"],
        promoted["prompt_name"],
        promoted["prompt_version"],
        promoted["session_id"],
        promoted["user_id"],
        "llm" if call is not None else _genai_kind(attrs),
        common["resource_attributes"],
        _json(_without_content(attrs) if call is not None else attrs),
        _json(events) if events else None,
        _json(links) if links else None,
        received_at_ns,
    )
    if call is None:
        return row, None
    call.update(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        start_time=start_time,
        end_time=end_time,
        duration_ms=duration_ms,
        received_at=received_at_ns,
        scope_name=scope_name,
        span_name=name,
        price_model=None,  # store.pricing's, after the decode
    )
    call.update(owner)
    return row, _llm_call_row(call)


# Prompt and completion attributes of an LLM span. Their content is stored once, normalized, in
# llm_calls (input_messages, output_messages, ...); keeping it in spans.attributes too tripled
# the bytes written per LLM span.
_CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
    }
)
# gen_ai.prompt.0.content is content; gen_ai.prompt.name is not.
_INDEXED_CONTENT = re.compile(r"(?:gen_ai\.(?:prompt|completion)|llm\.(?:input|output)_messages)\.\d")


def _without_content(attrs: dict[str, Any]) -> dict[str, Any]:
    # Set arithmetic in C instead of a test per key (that cost ~4 µs a span): only keys not seen
    # before as plain are looked at, and those are the few content keys and the odd new key.
    drop = []
    for key in attrs.keys() - _PLAIN_KEYS:
        if _is_content_key(key):
            drop.append(key)
        elif len(_PLAIN_KEYS) < _MAX_PLAIN_KEYS:
            _PLAIN_KEYS.add(key)
    if not drop:
        return attrs
    kept = dict(attrs)
    for key in drop:
        del kept[key]
    return kept


_PLAIN_KEYS: set[str] = set()
_MAX_PLAIN_KEYS = 20_000  # a sender inventing keys without end must not grow it without end


def _is_content_key(key: str) -> bool:
    return key in _CONTENT_KEYS or _INDEXED_CONTENT.match(key) is not None


def _genai_kind(attrs: dict[str, Any]) -> str | None:
    openinference = attrs.get("openinference.span.kind")
    if isinstance(openinference, str) and openinference:
        return openinference.lower()
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _OPERATION_KINDS:
        return _OPERATION_KINDS[operation]
    if "gen_ai.tool.name" in attrs or "tool.name" in attrs:
        return "tool"
    return None


def _json(value: Any) -> str:
    return dumps(value) or "null"
