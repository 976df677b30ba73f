"""Checks a chat-completions request body the way the OpenAI API does, before the simulator answers it.

Comes in: the decoded JSON body and the models the simulator serves. Goes out: the resolved model
snapshot, or an ApiError carrying the HTTP status and an OpenAI-style error body
(`{"error": {"message", "type", "param", "code"}}`), so clients show their usual exceptions
(openai.BadRequestError, openai.NotFoundError). Must not: answer anything.
"""

from __future__ import annotations

from typing import Any

from replay.sim_answers import text_of

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
FORMATS = ("text", "json_object", "json_schema")


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def body(self) -> dict[str, Any]:
        kind = {401: "authentication_error", 404: "invalid_request_error", 429: "rate_limit_error"}
        error_type = kind.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": str(self), "type": error_type, "param": self.param, "code": self.code}}


def check_request(body: Any, models: dict[str, str]) -> str:
    """The snapshot that answers `body`, or ApiError saying what is wrong with it."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", "model", "missing_required_parameter")
    if model not in models:
        served = ", ".join(sorted(models))
        raise ApiError(
            404,
            f"The model `{model}` does not exist in the vigil simulator. It serves: {served} "
            "(start `vigil sim-llm --model NAME` to serve another name).",
            "model",
            "model_not_found",
        )
    _check_messages(body.get("messages"))
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_int(body, "n", 1, 8)
    _check_int(body, "max_tokens", 1, 1_000_000)
    _check_int(body, "max_completion_tokens", 1, 1_000_000)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "'stream' must be a boolean.", "stream", "invalid_type")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    _check_response_format(body)
    _check_tools(body)
    return models[model]


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty array of messages.", "messages", "invalid_value")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, dict) else None
            raise ApiError(
                400,
                f"Invalid value for '{where}.role': {role!r}; use one of {', '.join(ROLES)}.",
                f"{where}.role",
                "invalid_value",
            )
        content = message.get("content")
        no_content_ok = message["role"] == "assistant" and (message.get("tool_calls") or message.get("refusal"))
        if not isinstance(content, str | list) and not (content is None and no_content_ok):
            raise ApiError(
                400,
                f"Invalid type for '{where}.content': expected a string or an array of parts.",
                f"{where}.content",
                "invalid_type",
            )
        if message["role"] == "tool" and not message.get("tool_call_id"):
            raise ApiError(
                400,
                f"Missing required parameter: '{where}.tool_call_id'.",
                f"{where}.tool_call_id",
                "missing_required_parameter",
            )


def _check_number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{key}': {value!r}; expected a number from {low} to {high}.", key, "invalid_value"
        )


def _check_int(body: dict[str, Any], key: str, low: int, high: int) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            400, f"Invalid '{key}': {value!r}; expected an integer from {low} to {high}.", key, "invalid_value"
        )


def _check_response_format(body: dict[str, Any]) -> None:
    fmt = body.get("response_format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMATS:
        raise ApiError(
            400,
            f"Invalid 'response_format': use a type of {', '.join(FORMATS)}.",
            "response_format.type",
            "invalid_value",
        )
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not spec.get("name") or not isinstance(spec.get("schema"), dict):
            raise ApiError(
                400,
                "'response_format.json_schema' needs a 'name' and a 'schema' object.",
                "response_format.json_schema",
                "missing_required_parameter",
            )
    if fmt["type"] == "json_object" and not any("json" in text_of(m.get("content")).lower() for m in body["messages"]):
        raise ApiError(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "messages",
        )


def _check_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    names = set()
    for i, tool in enumerate(tools if isinstance(tools, list) else [None]):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function" or not function.get("name"):
            raise ApiError(
                400,
                f"Invalid 'tools[{i}]': expected {{'type': 'function', 'function': {{'name': ...}}}}.",
                f"tools[{i}]",
                "invalid_value",
            )
        names.add(function["name"])
    choice = body.get("tool_choice")
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and named not in names:
        raise ApiError(
            400, f"Invalid 'tool_choice': no tool named {named!r} in 'tools'.", "tool_choice", "invalid_value"
        )
    if not isinstance(choice, dict | None) and choice not in ("none", "auto", "required"):
        raise ApiError(400, f"Invalid 'tool_choice': {choice!r}.", "tool_choice", "invalid_value")
