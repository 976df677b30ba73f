"""Span attributes → one normalized `llm_calls` row, whatever convention the sender used.

Comes in: a span's decoded attributes (see `collector.attributes`) and a few facts about the
span (`SpanFacts`). Goes out: a dict with the convention-dependent `llm_calls` columns (see
`store.schema.LLM_CALLS_SCHEMA`), or None when the span is not an LLM call. Ids, times,
service and project are filled in by the caller. Pure, no I/O, never raises.

One module per convention lives in `collector/conventions/`; this module picks one.

Is it an LLM call? In this order, the first that has a say decides:
  1. `openinference.span.kind`: LLM or EMBEDDING yes, any other kind no;
  2. `gen_ai.operation.name`: a model operation (chat, embeddings, ...) yes; invoke_agent,
     create_agent, execute_tool (agent-level spans that carry summed usage) no;
  3. OpenLLMetry's `llm.request.type` (set only on model-call spans) yes;
  4. a provider (`gen_ai.provider.name` / `gen_ai.system`) with a model or usage attribute yes.
Which convention? `openinference.span.kind` → openinference; else any OpenLLMetry-only signal
(`llm.request.type`, `llm.is_streaming`, `gen_ai.is_streaming`, `llm.usage.total_tokens`,
`traceloop.*`, flattened `gen_ai.prompt.N.*`/`gen_ai.completion.N.*`/`llm.request.functions.N.*`,
or its `opentelemetry.instrumentation.openai.v*` scope) → openllmetry; else otel_genai.
`gen_ai.*` attributes are read for every convention and win where both exist; the chosen
convention's module fills what is left, and says the operation.

status is 'error' when the span status is ERROR or `error.type` is set; error_type is `error.type`
(class reprs and module paths stripped: `InternalServerError`), else the last `exception` event's
type, else an exception-class prefix of the status message ("InternalServerError: ...").
total_tokens, when not sent, is input + output if both are known. A cost the instrumentation
reported (`collector.conventions.cost`) is kept as cost_usd with cost_source 'reported'; every
other call is priced later, in the pipeline, by `store.pricing`. Other values are never
copied across (a missing request model stays null even when the response model is known).

mapping: 'unmapped' when a field every call should have could not be read, listed in
unmapped_fields: model (neither request nor response model), input_tokens, output_tokens (not
for embeddings or rerank), plus any token count that was sent but is not a number. A failed call
(status error) without usage is 'mapped': it failed before the provider counted tokens.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from collector.conventions import as_str, dumps, first, first_bool, first_int, first_str, group_keys, json_object
from collector.conventions import openinference as oi
from collector.conventions import openllmetry as oll
from collector.conventions import otel_genai as genai
from collector.conventions.cost import read_reported_cost
from collector.conventions.messages import summarize_outputs
from collector.quality import assess_call
from store.quality import QUALITY_COLUMNS

logger = logging.getLogger(__name__)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, 0.74 µs per instance against
# 0.19, and one is made per span.
@dataclass(slots=True)
class SpanFacts:
    name: str
    kind: str  # internal | server | client | producer | consumer | unspecified
    status_code: str  # unset | ok | error
    status_message: str
    scope_name: str
    # [{"name": str, "attributes": dict}] — exception events carry exception.type / .message
    events: list[dict[str, Any]] = field(default_factory=list)


# Attribute keys per field, in precedence order. Constants so that config can extend them.
PROVIDER_KEYS = genai.PROVIDER_KEYS + oi.PROVIDER_KEYS
# OpenInference spellings that are not semconv values → the semconv `gen_ai.provider.name` value.
# Semconv values of any generation stay as sent (lowercased): az.ai.openai and azure.ai.openai,
# vertex_ai and gcp.vertex_ai, aws.bedrock; a config can add aliases here.
PROVIDER_ALIASES = {"mistralai": "mistral_ai", "vertexai": "gcp.vertex_ai"}
RESPONSE_MODEL_KEYS = genai.RESPONSE_MODEL_KEYS + oi.RESPONSE_MODEL_KEYS
TOKEN_KEYS = {
    "input_tokens": genai.INPUT_TOKEN_KEYS + oll.INPUT_TOKEN_KEYS + oi.INPUT_TOKEN_KEYS,
    "output_tokens": genai.OUTPUT_TOKEN_KEYS + oll.OUTPUT_TOKEN_KEYS + oi.OUTPUT_TOKEN_KEYS,
    "cached_input_tokens": genai.CACHED_INPUT_TOKEN_KEYS + oll.CACHED_INPUT_TOKEN_KEYS + oi.CACHED_INPUT_TOKEN_KEYS,
    "cache_creation_input_tokens": genai.CACHE_CREATION_TOKEN_KEYS
    + oll.CACHE_CREATION_TOKEN_KEYS
    + oi.CACHE_CREATION_TOKEN_KEYS,
    "reasoning_tokens": genai.REASONING_TOKEN_KEYS + oll.REASONING_TOKEN_KEYS + oi.REASONING_TOKEN_KEYS,
    "total_tokens": genai.TOTAL_TOKEN_KEYS + oll.TOTAL_TOKEN_KEYS + oi.TOTAL_TOKEN_KEYS,
}
_ALL_TOKEN_KEYS = frozenset(key for keys in TOKEN_KEYS.values() for key in keys)
PROMPT_NAME_KEYS = (
    "gen_ai.prompt.name",
    "gen_ai.prompt.id",
    "prompt.name",
    "prompt.id",
    "traceloop.prompt.key",
    "langfuse.prompt.name",
    "langfuse.observation.prompt.name",
    "llm.prompt_template.name",
)
PROMPT_VERSION_KEYS = (
    "gen_ai.prompt.version",
    "prompt.version",
    "traceloop.prompt.version",
    "langfuse.prompt.version",
    "langfuse.observation.prompt.version",
    "llm.prompt_template.version",
)
PROMPT_TEMPLATE_KEYS = ("llm.prompt_template.template", "traceloop.prompt.template", "gen_ai.prompt.template")
PROMPT_VARIABLES_KEYS = (
    "llm.prompt_template.variables",
    "traceloop.prompt.template_variables",
    "gen_ai.prompt.template_variables",
)
# OpenInference `using_metadata(...)`: a JSON object that may name the prompt with the keys above.
METADATA_KEYS = ("metadata",)
SESSION_ID_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "langfuse.session.id",
    "traceloop.association.properties.session_id",
)
USER_ID_KEYS = ("user.id", "enduser.id", "langfuse.user.id", "traceloop.association.properties.user_id")
_PROMOTED_KEYS = frozenset(PROMPT_NAME_KEYS + PROMPT_VERSION_KEYS + METADATA_KEYS + SESSION_ID_KEYS + USER_ID_KEYS)

_NO_OUTPUT_TOKENS = frozenset({"embeddings", "rerank"})
_CLASS_REPR = re.compile(r"<class '([^']+)'>")  # openai-v2 sends str(type(exc)) as error.type
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_FIELDS = (
    "convention", "provider", "operation", "request_model", "response_model", "response_id",
    *TOKEN_KEYS, "cost_usd", "cost_source",
    "input_messages", "output_messages", "output_text", "tool_calls", "tool_definitions", "refusal",
    "finish_reasons", "request_params", "output_type", "status", "status_message", "error_type",
    "is_streaming", "time_to_first_token_ms", "prompt_name", "prompt_version", "prompt_template",
    "prompt_variables", "session_id", "user_id", "mapping", "unmapped_fields", *QUALITY_COLUMNS,
)  # fmt: skip
_EMPTY_ROW = dict.fromkeys(_FIELDS)  # copied for each call: 0.2 µs, where dict.fromkeys takes 1.6


def is_llm_call(attrs: dict[str, Any]) -> bool:
    verdict = oi.classify(attrs)
    if verdict is None:
        verdict = genai.classify(attrs)
    if verdict is None:
        verdict = oll.classify(attrs)
    return bool(verdict)


def promoted_fields(attrs: dict[str, Any]) -> dict[str, str | None]:
    """prompt_name, prompt_version, session_id and user_id of any span (tasks inherit them)."""
    if attrs.keys().isdisjoint(_PROMOTED_KEYS):  # most spans: one C-level check instead of ~25 probes
        return {"prompt_name": None, "prompt_version": None, "session_id": None, "user_id": None}
    name, version = first_str(attrs, PROMPT_NAME_KEYS), first_str(attrs, PROMPT_VERSION_KEYS)
    if name is None or version is None:
        metadata = json_object(first(attrs, METADATA_KEYS))
        if metadata:
            name = name or first_str(metadata, PROMPT_NAME_KEYS)
            version = version or first_str(metadata, PROMPT_VERSION_KEYS)
    return {
        "prompt_name": name,
        "prompt_version": version,
        "session_id": first_str(attrs, SESSION_ID_KEYS),
        "user_id": first_str(attrs, USER_ID_KEYS),
    }


def normalize_llm_call(attrs: dict[str, Any], span: SpanFacts) -> dict[str, Any] | None:
    try:
        if not is_llm_call(attrs):
            return None
    except Exception:  # a bug here must not cost the span; it is still stored in `spans`
        logger.exception("llm-call detection failed span=%r", span.name)
        return None
    try:
        return _normalize(attrs, span)
    except Exception:
        logger.exception("normalize failed span=%r", span.name)
        row = _EMPTY_ROW.copy()
        status = "error" if span.status_code == "error" else "ok"
        row.update(status=status, mapping="unmapped", unmapped_fields=["normalizer_error"])
        return row


def _normalize(attrs: dict[str, Any], span: SpanFacts) -> dict[str, Any]:
    keys, span_name = group_keys(attrs), span.name or ""
    if oi.span_kind(attrs) is not None:
        convention = "openinference"
    elif oll.detect(attrs, keys, span.scope_name):
        convention = "openllmetry"
    else:
        convention = "otel_genai"
    row = _EMPTY_ROW.copy()
    provider = first_str(attrs, PROVIDER_KEYS)
    if provider is not None:
        provider = provider.lower()
        provider = PROVIDER_ALIASES.get(provider, provider)
    row.update(
        convention=convention,
        provider=provider,
        operation=genai.read_operation(attrs, span_name),
        request_model=first_str(attrs, genai.REQUEST_MODEL_KEYS),
        response_model=first_str(attrs, RESPONSE_MODEL_KEYS),
        response_id=first_str(attrs, genai.RESPONSE_ID_KEYS),
        is_streaming=first_bool(attrs, oll.STREAMING_KEYS),
        time_to_first_token_ms=genai.read_ttft_ms(attrs),
        tool_definitions=genai.read_tool_definitions(attrs),
        finish_reasons=genai.read_finish_reasons(attrs),
        output_type=genai.read_output_type(attrs),
    )
    unreadable = []
    sent = attrs.keys() & _ALL_TOKEN_KEYS  # one C-level pass instead of ~16 probes
    for name, token_keys in TOKEN_KEYS.items():
        if sent.isdisjoint(token_keys):
            continue  # row[name] stays None
        row[name], bad = first_int(attrs, token_keys)
        if bad:
            unreadable.append(name)
    if row["total_tokens"] is None and row["input_tokens"] is not None and row["output_tokens"] is not None:
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    inputs, outputs = genai.read_messages(attrs)
    params = genai.read_request_params(keys)

    if convention == "openllmetry":
        flat_inputs, flat_outputs = oll.read_messages(keys)
        inputs, outputs = inputs or flat_inputs, outputs or flat_outputs
        row["operation"] = oll.read_operation(attrs, span_name) or row["operation"]
        _fill(
            row,
            tool_definitions=oll.read_tool_definitions(keys),
            finish_reasons=oll.read_finish_reasons(keys),
            output_type=oll.read_output_type(attrs),
        )
        params = oll.read_request_params(attrs, keys) | params
    elif convention == "openinference":
        found = oi.read(attrs, keys, span_name)
        row["operation"] = found.pop("operation")
        flat_inputs, flat_outputs = found.pop("input_messages"), found.pop("output_messages")
        inputs, outputs = inputs or flat_inputs, outputs or flat_outputs
        params = (found.pop("request_params", None) or {}) | params
        _fill(row, **found)

    if row["operation"] in _NO_OUTPUT_TOKENS:
        outputs = None  # vectors or scores sent as "text" parts (OpenLLMetry) are data, not an answer
    calls: list[dict[str, Any]] = []
    if outputs:
        _sync_finish_reasons(row, outputs)
        row["output_text"], calls, refusal = summarize_outputs(outputs)
        row["tool_calls"] = dumps(calls) if calls else None
        _fill(row, refusal=refusal)
    if row["operation"] not in _NO_OUTPUT_TOKENS:  # refusal, output signature, validation (store.quality)
        row.update(assess_call(row, attrs, calls, params, has_output=bool(outputs)))
    row["input_messages"], row["output_messages"] = dumps(inputs), dumps(outputs)
    row["request_params"] = dumps(params) if params else None
    row["tool_definitions"] = dumps(row["tool_definitions"])
    row["status"], row["error_type"] = _status(attrs, span)
    row["status_message"] = span.status_message or None
    row.update(promoted_fields(attrs))
    row["prompt_template"] = first_str(attrs, PROMPT_TEMPLATE_KEYS)
    variables = json_object(first(attrs, PROMPT_VARIABLES_KEYS))
    if variables is None and convention == "openllmetry":
        variables = oll.read_template_variables(keys)
    row["prompt_variables"] = dumps(variables)
    row["unmapped_fields"] = _unmapped(row, unreadable)
    row["mapping"] = "unmapped" if row["unmapped_fields"] else "mapped"
    reported = read_reported_cost(attrs)
    if reported is not None:  # store.pricing keeps it (over an estimate) and fills in the rest
        row["cost_usd"], row["cost_source"] = reported, "reported"
    return row


def _fill(row: dict[str, Any], **values: Any) -> None:
    for name, value in values.items():
        if row.get(name) is None and value is not None:
            row[name] = value


def _sync_finish_reasons(row: dict[str, Any], outputs: list[dict[str, Any]]) -> None:
    reasons = row["finish_reasons"]
    if reasons and len(reasons) == len(outputs):  # OpenInference: the span-level finish reason
        for message, reason in zip(outputs, reasons, strict=True):
            message.setdefault("finish_reason", reason)
    elif not reasons:  # openai-v2 streaming spans: only the output messages carry it
        row["finish_reasons"] = [m["finish_reason"] for m in outputs if "finish_reason" in m] or None


def _status(attrs: dict[str, Any], span: SpanFacts) -> tuple[str, str | None]:
    declared = _clean_error_type(attrs.get("error.type"))
    if declared is None and span.status_code != "error":
        return "ok", None
    if declared is not None:
        return "error", declared
    for event in reversed(span.events or ()):  # the last exception is the one that ended the span
        if isinstance(event, dict) and event.get("name") == "exception" and isinstance(event.get("attributes"), dict):
            found = _clean_error_type(event["attributes"].get("exception.type"))
            if found is not None:
                return "error", found
    # OpenInference: "InternalServerError: Error code: 500 - ..."
    prefix, colon, _ = (span.status_message or "").partition(":")
    if colon and _DOTTED_NAME.fullmatch(prefix) and prefix.rpartition(".")[2][:1].isupper():
        return "error", _clean_error_type(prefix)
    return "error", None


def _clean_error_type(value: Any) -> str | None:
    """`<class 'openai.InternalServerError'>` or `openai.InternalServerError` → `InternalServerError`;
    semconv values such as `timeout`, `500` or `_OTHER` stay as they are."""
    text = as_str(value)
    if text is None:
        return None
    match = _CLASS_REPR.fullmatch(text)
    if match:
        text = match.group(1)
    if "." in text and _DOTTED_NAME.fullmatch(text):
        text = text.rpartition(".")[2]
    return text[:200]


def _unmapped(row: dict[str, Any], unreadable: list[str]) -> list[str]:
    missing = []
    if row["request_model"] is None and row["response_model"] is None:
        missing.append("model")
    failed = row["status"] == "error"
    if row["input_tokens"] is None and (not failed or "input_tokens" in unreadable):
        missing.append("input_tokens")
    if (
        row["output_tokens"] is None
        and row["operation"] not in _NO_OUTPUT_TOKENS
        and (not failed or "output_tokens" in unreadable)
    ):
        missing.append("output_tokens")
    return missing + [name for name in unreadable if name not in missing and row[name] is None]
