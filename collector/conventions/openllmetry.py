"""OpenLLMetry (Traceloop) specifics, on top of the `gen_ai.*` attributes it shares with semconv.

Comes in: decoded span attributes, grouped keys and span facts. Goes out: what only OpenLLMetry
sends: `llm.request.type`, `llm.is_streaming`/`gen_ai.is_streaming`, `llm.usage.*` tokens, the
flattened `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` messages and `llm.request.functions.N.*`
tools of the ≤0.52 releases, `traceloop.*` prompt attributes, and the `openai.response` span
name, whose `gen_ai.operation.name` says "chat" although it is a Responses API call.
"""

from __future__ import annotations

from typing import Any

from collector.conventions import Keys, as_str, loads, subgroup
from collector.conventions.messages import to_parts, tool_call_part
from collector.conventions.otel_genai import param_value

REQUEST_TYPE_KEY = "llm.request.type"
# llm.request.type values (semconv-ai LLMRequestTypeValues) → our operation vocabulary.
REQUEST_TYPE_OPERATIONS = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "rerank": "rerank",
}
RESPONSES_SPAN_NAMES = frozenset({"openai.response"})
STREAMING_KEYS = ("gen_ai.is_streaming", "llm.is_streaming")
INPUT_TOKEN_KEYS = ("llm.usage.prompt_tokens",)
OUTPUT_TOKEN_KEYS = ("llm.usage.completion_tokens",)
CACHED_INPUT_TOKEN_KEYS = ("gen_ai.usage.cache_read_input_tokens",)
CACHE_CREATION_TOKEN_KEYS = ("gen_ai.usage.cache_creation_input_tokens",)
REASONING_TOKEN_KEYS = ("llm.usage.reasoning_tokens",)
TOTAL_TOKEN_KEYS = ("llm.usage.total_tokens",)
# Attributes only OpenLLMetry sends; any one of them names the convention.
EVIDENCE_KEYS = (REQUEST_TYPE_KEY, "llm.is_streaming", "gen_ai.is_streaming", "llm.usage.total_tokens")
_SCOPE_PREFIX = "opentelemetry.instrumentation.openai.v"  # its OpenAI wrapper: ".v0" / ".v1"
# Sampling parameters from before `gen_ai.request.*`.
_LEGACY_PARAMS = {
    "llm.top_k": "top_k",
    "llm.frequency_penalty": "frequency_penalty",
    "llm.presence_penalty": "presence_penalty",
    "llm.chat.stop_sequences": "stop_sequences",
}
_NOT_PARAMS = frozenset({"type", "model"})  # llm.request.* keys that are not parameters


def detect(attrs: dict[str, Any], keys: Keys, scope_name: str) -> bool:
    if (scope_name or "").startswith(_SCOPE_PREFIX):
        return True
    if any(key in attrs for key in EVIDENCE_KEYS):
        return True
    indexed = keys.indexed
    return (
        "traceloop." in keys.prefixed
        or "traceloop.prompt.template_variables." in keys.prefixed
        or "gen_ai.prompt." in indexed
        or "gen_ai.completion." in indexed
        or "llm.request.functions." in indexed
    )


def classify(attrs: dict[str, Any]) -> bool | None:
    """`llm.request.type` is set only on model-call spans (workflow/task/agent spans lack it)."""
    return True if as_str(attrs.get(REQUEST_TYPE_KEY)) is not None else None


def read_operation(attrs: dict[str, Any], span_name: str) -> str | None:
    """Wins over `gen_ai.operation.name`, which is "chat" on the Responses API span."""
    if span_name in RESPONSES_SPAN_NAMES:
        return "responses"
    request_type = as_str(attrs.get(REQUEST_TYPE_KEY))
    if request_type is None:
        return None
    request_type = request_type.lower()
    return REQUEST_TYPE_OPERATIONS.get(request_type, None if request_type == "unknown" else request_type)


def read_messages(keys: Keys) -> tuple[list | None, list | None]:
    prompts = keys.indexed.get("gen_ai.prompt.")
    completions = keys.indexed.get("gen_ai.completion.")
    inputs = [_message(prompts[i], "user") for i in sorted(prompts)] if prompts else None
    outputs = [_message(completions[i], "assistant") for i in sorted(completions)] if completions else None
    return inputs, outputs


def _message(fields: dict[str, Any], default_role: str) -> dict[str, Any]:
    role = as_str(fields.get("role")) or default_role
    content = fields.get("content")
    if role == "tool" and fields.get("tool_call_id") is not None:
        parts = [{"type": "tool_call_response", "id": as_str(fields["tool_call_id"]), "response": content}]
    else:
        parts = to_parts(content)
    calls = subgroup(fields, "tool_calls.")
    for i in sorted(calls):
        call = calls[i]
        parts.append(tool_call_part(call.get("id"), call.get("name"), call.get("arguments")))
    if "function_call.name" in fields:  # pre-tools OpenAI function calling
        parts.append(tool_call_part(None, fields["function_call.name"], fields.get("function_call.arguments")))
    refusal = fields.get("refusal")
    if refusal is not None:
        parts.append({"type": "refusal", "content": refusal if isinstance(refusal, str) else str(refusal)})
    message: dict[str, Any] = {"role": role, "parts": parts}
    finish_reason = as_str(fields.get("finish_reason"))
    if finish_reason is not None:
        message["finish_reason"] = finish_reason
    return message


def read_finish_reasons(keys: Keys) -> list[str] | None:
    completions = keys.indexed.get("gen_ai.completion.", {})
    reasons = [as_str(completions[i].get("finish_reason")) for i in sorted(completions)]
    return [r for r in reasons if r is not None] or None


def read_tool_definitions(keys: Keys) -> list | None:
    functions = keys.indexed.get("llm.request.functions.")
    if not functions:
        return None
    tools = []
    for i in sorted(functions):
        fields = functions[i]
        tool: dict[str, Any] = {"type": "function", "name": as_str(fields.get("name"))}
        if fields.get("description") is not None:
            tool["description"] = fields["description"]
        if fields.get("parameters") is not None:
            parameters = loads(fields["parameters"])
            tool["parameters"] = fields["parameters"] if parameters is None else parameters
        tools.append(tool)
    return tools


def read_request_params(attrs: dict[str, Any], keys: Keys) -> dict[str, Any]:
    params = {
        name: param_value(value)
        for name, value in keys.prefixed.get("llm.request.", {}).items()
        if name not in _NOT_PARAMS and value not in (None, "", [])
    }
    for key, name in _LEGACY_PARAMS.items():
        if attrs.get(key) not in (None, "", []):
            params.setdefault(name, attrs[key])
    return params


def read_output_type(attrs: dict[str, Any]) -> str | None:
    # Any structured-output schema (json_object or a json_schema) asks for JSON.
    return "json" if as_str(attrs.get("gen_ai.request.structured_output_schema")) is not None else None


def read_template_variables(keys: Keys) -> dict[str, Any] | None:
    """traceloop-sdk flattens the variables: `traceloop.prompt.template_variables.<name>`."""
    return keys.prefixed.get("traceloop.prompt.template_variables.") or None
