"""OTel GenAI semantic conventions (`gen_ai.*`), every generation seen in the wild.

Comes in: decoded span attributes. Goes out: the values this convention defines, read with the
newest attribute name first: `gen_ai.provider.name` (semconv ≥1.37) before `gen_ai.system`,
`gen_ai.usage.input_tokens` (≥1.27) before `gen_ai.usage.prompt_tokens`, `gen_ai.input.messages`
(≥1.37, JSON text on spans, structured on events) before the deprecated plain `gen_ai.prompt`.
Content sent as per-message log events (≈1.28–1.36) is not on the span and is not read here.
Other conventions reuse these attributes (OpenLLMetry does), so `normalize` reads them first.
"""

from __future__ import annotations

from typing import Any

from collector.conventions import Keys, as_float, as_str, loads, maybe_json
from collector.conventions.messages import to_messages, tool_definition

# Annotated: mypy (which compiles this module, see setup.py) cannot infer these where
# collector.normalize adds them up.
PROVIDER_KEYS: tuple[str, ...] = ("gen_ai.provider.name", "gen_ai.system")
OPERATION_KEY = "gen_ai.operation.name"
REQUEST_MODEL_KEYS: tuple[str, ...] = ("gen_ai.request.model",)
RESPONSE_MODEL_KEYS: tuple[str, ...] = ("gen_ai.response.model",)
RESPONSE_ID_KEYS: tuple[str, ...] = ("gen_ai.response.id",)
INPUT_TOKEN_KEYS: tuple[str, ...] = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKEN_KEYS: tuple[str, ...] = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHED_INPUT_TOKEN_KEYS: tuple[str, ...] = ("gen_ai.usage.cache_read.input_tokens",)
CACHE_CREATION_TOKEN_KEYS: tuple[str, ...] = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
)
REASONING_TOKEN_KEYS: tuple[str, ...] = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
TOTAL_TOKEN_KEYS: tuple[str, ...] = ("gen_ai.usage.total_tokens",)
# Seconds, per semconv; converted to ms by the reader.
TTFT_SECONDS_KEYS: tuple[str, ...] = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")

# gen_ai.operation.name values that are one model call → our operation vocabulary.
MODEL_OPERATIONS = {
    "chat": "chat",
    "text_completion": "text_completion",
    "completion": "text_completion",
    "generate_content": "generate_content",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "responses": "responses",
    "response": "responses",
    "rerank": "rerank",
}
# Agent-level operations: they often carry a model and summed usage, but are not one call.
NON_MODEL_OPERATIONS = frozenset(
    {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "retrieval", "execute_task"}
)
# Usage or model attributes that, next to a provider, mark a model call without an operation.
_CALL_EVIDENCE = REQUEST_MODEL_KEYS + RESPONSE_MODEL_KEYS + INPUT_TOKEN_KEYS + OUTPUT_TOKEN_KEYS


def classify(attrs: dict[str, Any]) -> bool | None:
    """True: a model call; False: explicitly something else (an agent, a tool); None: no say."""
    operation = attrs.get(OPERATION_KEY)
    if operation is not None:
        name = str(operation).strip().lower()
        if name in MODEL_OPERATIONS:
            return True
        if name in NON_MODEL_OPERATIONS:
            return False
    has_provider = any(attrs.get(key) is not None for key in PROVIDER_KEYS)
    if has_provider and any(attrs.get(key) is not None for key in _CALL_EVIDENCE):
        return True
    return None


def read_operation(attrs: dict[str, Any], span_name: str) -> str | None:
    operation = as_str(attrs.get(OPERATION_KEY))
    if operation is not None:
        operation = operation.lower()
        return MODEL_OPERATIONS.get(operation, operation)
    # Semconv span names are "{operation} {model}"; use that when the attribute is missing.
    head = span_name.partition(" ")[0].lower()
    return MODEL_OPERATIONS.get(head)


def read_messages(attrs: dict[str, Any]) -> tuple[list | None, list | None]:
    inputs = to_messages(attrs.get("gen_ai.input.messages"), "user")
    outputs = to_messages(attrs.get("gen_ai.output.messages"), "assistant")
    if inputs is None:  # deprecated whole-prompt attributes (semconv ≤1.26)
        inputs = to_messages(attrs.get("gen_ai.prompt"), "user")
    if outputs is None:
        outputs = to_messages(attrs.get("gen_ai.completion"), "assistant")
    instructions = attrs.get("gen_ai.system_instructions")
    if instructions is not None:
        # Semconv ≥1.37 keeps the system prompt apart, as a list of parts (or plain text).
        system = to_messages({"role": "system", "parts": loads(instructions)}, "system")
        if not system or not system[0]["parts"]:
            system = to_messages({"role": "system", "content": instructions}, "system")
        inputs = (system or []) + (inputs or []) or None
    return inputs, outputs


def read_tool_definitions(attrs: dict[str, Any]) -> list | None:
    tools = loads(attrs.get("gen_ai.tool.definitions"))
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        return None
    return [t for t in map(tool_definition, tools) if t is not None] or None


def read_finish_reasons(attrs: dict[str, Any]) -> list[str] | None:
    value = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(value, str):
        parsed = loads(value)
        value = parsed if isinstance(parsed, list) else [value]
    if not isinstance(value, list):
        return None
    reasons = [r for r in map(as_str, value) if r is not None]
    return reasons or None


def read_request_params(keys: Keys) -> dict[str, Any]:
    """`gen_ai.request.*` minus the model, prefix stripped; `gen_ai.openai.request.*` fills gaps."""
    params: dict[str, Any] = {}
    for prefix in ("gen_ai.request.", "gen_ai.openai.request."):
        for name, value in keys.prefixed.get(prefix, {}).items():
            if name != "model" and name not in params and value not in (None, "", []):
                params[name] = param_value(value)
    return params


def param_value(value: Any) -> Any:
    """JSON text of an object or list (a schema, a response format) is stored parsed."""
    return maybe_json(value) if isinstance(value, str) and value[:1] in ("{", "[") else value


def read_output_type(attrs: dict[str, Any]) -> str | None:
    output_type = as_str(attrs.get("gen_ai.output.type"))
    if output_type is not None:
        return output_type.lower()
    return response_format_type(attrs.get("gen_ai.openai.request.response_format"))


def response_format_type(value: Any) -> str | None:
    """OpenAI `response_format` (a type name, or `{"type": ...}` as JSON/dict) → text | json."""
    parsed = loads(value) if isinstance(value, str) and value[:1] == "{" else value
    if isinstance(parsed, dict):
        parsed = parsed.get("type")
    name = as_str(parsed)
    if name is None:
        return None
    name = name.lower()
    return "json" if name.startswith("json") else name


def read_ttft_ms(attrs: dict[str, Any]) -> float | None:
    for key in TTFT_SECONDS_KEYS:
        seconds = as_float(attrs.get(key))
        if seconds is not None and seconds >= 0:
            return seconds * 1000.0
    return None
