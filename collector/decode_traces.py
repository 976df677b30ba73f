"""ExportTraceServiceRequest → Arrow tables for `spans` and `llm_calls`.

Comes in: a parsed OTLP trace request. Goes out: `pa.Table`s matching `store.schema`, one row
per span and one per LLM call. Pure, no I/O. `validate_traces` runs first, on the request path,
so that bad spans are reported to the sender through `partial_success` instead of vanishing.
An LLM span's prompt and completion attributes go to its `llm_calls` row only (see _CONTENT_KEYS).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.attributes import decode_attributes, decode_uint64, resource_columns
from collector.conventions import dumps
from collector.normalize import SpanFacts, normalize_llm_call, promoted_fields
from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA

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
_PROMOTED = ("prompt_name", "prompt_version", "session_id", "user_id")
_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)


def validate_traces(request: ExportTraceServiceRequest) -> tuple[int, str]:
    """Drop spans that cannot be stored (bad ids) from `request`; return (rejected, reason)."""
    rejected, reasons = 0, set()
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            keep = []
            for span in scope_spans.spans:
                reason = _invalid_reason(span)
                if reason:
                    rejected += 1
                    reasons.add(reason)
                else:
                    keep.append(span)
            if len(keep) != len(scope_spans.spans):
                del scope_spans.spans[:]
                scope_spans.spans.extend(keep)
    return rejected, "; ".join(sorted(reasons))


def _invalid_reason(span: Span) -> str:
    if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE:
        return "trace_id must be 16 non-zero bytes"
    if len(span.span_id) != 8 or span.span_id == _ZERO_SPAN:
        return "span_id must be 8 non-zero bytes"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id must be empty or 8 bytes"
    return ""


def decode_traces(request: ExportTraceServiceRequest, received_at_ns: int) -> dict[str, pa.Table]:
    spans: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        common = resource_columns(resource_spans.resource, received_at_ns)
        owner = {"service_name": common["service_name"], "project": common["project"]}
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version or None
            for span in scope_spans.spans:
                if _invalid_reason(span):
                    continue
                row, call = _decode_span(span, scope_name, received_at_ns)
                row.update(common, scope_version=scope_version)
                spans.append(row)
                if call is not None:
                    calls.append(call | owner)
    return {
        "spans": pa.Table.from_pylist(spans, SPANS_SCHEMA),
        "llm_calls": pa.Table.from_pylist(calls, LLM_CALLS_SCHEMA),
    }


def _decode_span(span: Span, scope_name: str, received_at_ns: int) -> tuple[dict[str, Any], dict | None]:
    attrs = decode_attributes(span.attributes)
    status_code = _STATUS.get(span.status.code, "unset")
    kind = _KINDS.get(span.kind, "unspecified")
    events = [
        {
            "time": event.time_unix_nano,
            "name": event.name,
            "attributes": decode_attributes(event.attributes),
        }
        for event in span.events
    ]
    facts = SpanFacts(span.name, kind, status_code, span.status.message, scope_name, events)
    call = normalize_llm_call(attrs, facts)
    ids = {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
    }
    times = {
        "start_time": decode_uint64(span.start_time_unix_nano),  # None past 2262: see decode_uint64
        "end_time": decode_uint64(span.end_time_unix_nano),
        "duration_ms": max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e6,
        "received_at": received_at_ns,
    }
    promoted = (
        {key: call[key] for key in _PROMOTED} if call is not None else promoted_fields(attrs)
    )  # the normalizer already read them for an LLM call
    row = ids | times | promoted
    row.update(
        trace_state=span.trace_state or None,
        name=span.name,
        kind=kind,
        status_code=status_code,
        status_message=span.status.message or None,
        scope_name=scope_name,
        genai_kind="llm" if call is not None else _genai_kind(attrs),
        attributes=_json(_without_content(attrs) if call is not None else attrs),
        events=_json(events) if events else None,
        links=_json(
            [
                {
                    "trace_id": link.trace_id.hex(),
                    "span_id": link.span_id.hex(),
                    "attributes": decode_attributes(link.attributes),
                }
                for link in span.links
            ]
        )
        if span.links
        else None,
    )
    if call is not None:
        call.update(ids, **times, scope_name=scope_name, span_name=span.name)
    return row, call


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
    return {key: value for key, value in attrs.items() if not _is_content_key(key)}


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
