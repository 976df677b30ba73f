"""Arize OpenInference (`openinference.span.kind`, `llm.*`, `embedding.*`, `input/output.value`).

Comes in: decoded span attributes, grouped keys and the span name. Goes out: a partial row of
the fields OpenInference carries in its own way: the request model and parameters live in the
`llm.invocation_parameters` JSON, messages are flattened `llm.{input,output}_messages.N.message.*`,
and the response id, the operation and `message.refusal` exist only inside the raw response
`output.value`, which is parsed once (JSON only, never for embeddings, whose vectors are large).
"""

from __future__ import annotations

from typing import Any

from collector.conventions import Keys, as_bool, as_str, first, json_object, loads, subgroup
from collector.conventions.messages import text_part, to_parts, tool_call_part, tool_definition
from collector.conventions.otel_genai import response_format_type

SPAN_KIND_KEY = "openinference.span.kind"
MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})
PROVIDER_KEYS = ("llm.provider", "llm.system")
RESPONSE_MODEL_KEYS = ("llm.model_name", "embedding.model_name")
INVOCATION_KEYS = ("llm.invocation_parameters", "embedding.invocation_parameters")
INPUT_TOKEN_KEYS = ("llm.token_count.prompt",)
OUTPUT_TOKEN_KEYS = ("llm.token_count.completion",)
CACHED_INPUT_TOKEN_KEYS = ("llm.token_count.prompt_details.cache_read",)
CACHE_CREATION_TOKEN_KEYS = ("llm.token_count.prompt_details.cache_write",)
REASONING_TOKEN_KEYS = ("llm.token_count.completion_details.reasoning",)
TOTAL_TOKEN_KEYS = ("llm.token_count.total",)
# Span names of openinference-instrumentation-openai for the non-chat endpoints.
_SPAN_NAME_OPERATIONS = {"Response": "responses", "Completion": "text_completion"}
# Raw-response `object` values → operation (OpenAI-compatible APIs).
_OBJECT_OPERATIONS = {"response": "responses", "text_completion": "text_completion"}
# Invocation parameters that are content, not parameters.
_NOT_PARAMS = frozenset({"model", "messages", "input", "prompt", "instructions", "tools", "functions"})
_MAX_RAW_JSON = 1 << 20  # parse raw request/response bodies only up to 1 MiB


def span_kind(attrs: dict[str, Any]) -> str | None:
    kind = as_str(attrs.get(SPAN_KIND_KEY))
    return kind.upper() if kind is not None else None


def classify(attrs: dict[str, Any]) -> bool | None:
    """An OpenInference span says what it is: LLM and EMBEDDING are model calls, CHAIN, TOOL,
    AGENT, RETRIEVER, ... are not, even when they carry a model name."""
    kind = span_kind(attrs)
    return None if kind is None else kind in MODEL_KINDS


def read(attrs: dict[str, Any], keys: Keys, span_name: str) -> dict[str, Any]:
    embedding = span_kind(attrs) == "EMBEDDING"
    out: dict[str, Any] = {}
    invocation = json_object(first(attrs, INVOCATION_KEYS))
    if invocation is not None:
        out["request_model"] = as_str(invocation.get("model"))
        # The parameters are recorded as sent, so a missing `stream` means the API default: off.
        out["is_streaming"] = bool(as_bool(invocation.get("stream")))
        out["request_params"] = {k: v for k, v in invocation.items() if k not in _NOT_PARAMS} or None
        text_format = invocation.get("text")
        out["output_type"] = response_format_type(invocation.get("response_format")) or (
            response_format_type(text_format.get("format")) if isinstance(text_format, dict) else None
        )
    response = None if embedding else _raw_json(attrs, "output")
    out["operation"] = "embeddings" if embedding else _operation(attrs, span_name, response)
    refusal = None
    if isinstance(response, dict):
        out["response_id"] = as_str(response.get("id"))
        refusal = _refusal(response)
    inputs = _messages(keys, "llm.input_messages.", "user")
    outputs = _messages(keys, "llm.output_messages.", "assistant")
    if embedding and inputs is None:
        texts = keys.indexed.get("embedding.embeddings.", {})
        inputs = [
            {"role": "user", "parts": [text_part(texts[i]["embedding.text"])]}
            for i in sorted(texts)
            if texts[i].get("embedding.text") is not None
        ] or None
    if refusal is not None:
        outputs = outputs or [{"role": "assistant", "parts": []}]
        if not any(p.get("type") == "refusal" for p in outputs[0]["parts"]):
            outputs[0]["parts"].append({"type": "refusal", "content": refusal})
    out["input_messages"], out["output_messages"], out["refusal"] = inputs, outputs, refusal
    finish_reason = attrs.get("llm.finish_reason")
    reasons = finish_reason if isinstance(finish_reason, list) else [finish_reason]
    out["finish_reasons"] = [r for r in map(as_str, reasons) if r is not None] or None
    tools = keys.indexed.get("llm.tools.")
    if tools:
        definitions = (tool_definition(tools[i].get("tool.json_schema")) for i in sorted(tools))
        out["tool_definitions"] = [d for d in definitions if d is not None] or None
    return out


def _raw_json(attrs: dict[str, Any], which: str) -> Any:
    value = attrs.get(f"{which}.value")
    if not isinstance(value, str) or len(value) > _MAX_RAW_JSON:
        return None
    if as_str(attrs.get(f"{which}.mime_type")) != "application/json":
        return None
    return loads(value)


def _operation(attrs: dict[str, Any], span_name: str, response: Any) -> str:
    if span_name in _SPAN_NAME_OPERATIONS:
        return _SPAN_NAME_OPERATIONS[span_name]
    if isinstance(response, dict):
        return _OBJECT_OPERATIONS.get(as_str(response.get("object")) or "", "chat")
    request = _raw_json(attrs, "input")  # only reached when there is no response (a failed call)
    if isinstance(request, dict) and "messages" not in request:
        if "input" in request:
            return "responses"
        if "prompt" in request:
            return "text_completion"
    return "chat"


def _refusal(response: dict[str, Any]) -> str | None:
    """`choices[].message.refusal` (Chat Completions) or a `refusal` output part (Responses)."""
    for choice in _list(response.get("choices")):
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and as_str(message.get("refusal")):
            return message["refusal"]
    for item in _list(response.get("output")):
        for part in _list(item.get("content")) if isinstance(item, dict) else ():
            if isinstance(part, dict) and part.get("type") == "refusal" and as_str(part.get("refusal")):
                return part["refusal"]
    return None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _messages(keys: Keys, prefix: str, default_role: str) -> list[dict[str, Any]] | None:
    group = keys.indexed.get(prefix)
    return [_message(group[i], default_role) for i in sorted(group)] if group else None


def _message(fields: dict[str, Any], default_role: str) -> dict[str, Any]:
    role = as_str(fields.get("message.role")) or default_role
    content = fields.get("message.content")
    if role == "tool" and fields.get("message.tool_call_id") is not None:
        parts = [{"type": "tool_call_response", "id": as_str(fields["message.tool_call_id"]), "response": content}]
    else:
        parts = to_parts(content)
    contents = subgroup(fields, "message.contents.")
    for i in sorted(contents):
        item = contents[i]
        kind = as_str(item.get("message_content.type"))
        if kind == "image" or "message_content.image.image.url" in item:
            parts.append({"type": "uri", "modality": "image", "uri": item.get("message_content.image.image.url")})
        elif item.get("message_content.text") is not None:
            parts.append(text_part(item["message_content.text"]))
    calls = subgroup(fields, "message.tool_calls.")
    for i in sorted(calls):
        call = calls[i]
        parts.append(
            tool_call_part(
                call.get("tool_call.id"), call.get("tool_call.function.name"), call.get("tool_call.function.arguments")
            )
        )
    message: dict[str, Any] = {"role": role, "parts": parts}
    if as_str(fields.get("message.name")):
        message["name"] = as_str(fields["message.name"])
    return message
