"""Anthropic's Messages API through the official `anthropic` SDK (optional extra: `vigil[anthropic]`).

Comes in: a `ChatRequest` in the Chat Completions shape (what `replay.rebuild` makes). Goes out: a
`Completion`, or a `ProviderError`: retryable for 429, 5xx (529 "overloaded" included), timeouts
and connection errors, never for another 4xx. The SDK's retries are off, as for OpenAI.

Translation: system messages become `system`; assistant tool calls become `tool_use` blocks and
tool messages `tool_result` blocks of one user turn; `stop` becomes `stop_sequences`; sampling
parameters the SDK does not name (temperature, top_p) travel in the request body. Usage is stored
the way vigil stores it: input tokens include cache reads and writes.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import anthropic
except ImportError as exc:  # an optional extra
    raise ImportError(
        "the anthropic provider needs the optional extra: `uv sync --extra anthropic` "
        "(or `pip install 'vigil[anthropic]'`)"
    ) from exc

from replay.providers import Completion, sdk_error
from replay.rebuild import ChatRequest

_BODY_PARAMS = ("temperature", "top_p", "top_k")


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, base_url: str | None, api_key: str | None, timeout_s: float) -> None:
        self._client = anthropic.Anthropic(
            base_url=base_url or None, api_key=api_key or "not-needed", max_retries=0, timeout=timeout_s
        )

    def complete(self, request: ChatRequest) -> Completion:
        system, messages = to_anthropic_messages(request.messages)
        kwargs: dict[str, Any] = {"max_tokens": int(request.params["max_tokens"])}
        if system:
            kwargs["system"] = system
        stop = request.params.get("stop")
        if stop:
            kwargs["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        body = {k: request.params[k] for k in _BODY_PARAMS if k in request.params}
        if body:
            kwargs["extra_body"] = body
        if request.tools:
            kwargs["tools"] = [_tool(t) for t in request.tools]
        try:
            response = self._client.messages.create(model=request.model, messages=messages, **kwargs)
        except (anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
            raise sdk_error(exc, anthropic) from None
        return _completion(response)


def to_anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Chat Completions messages → (system text, Messages API turns, consecutive same-role turns merged)."""
    system, turns = [], []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(message.get("content") or "")
            continue
        if role == "tool":
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": _text(message)}]
        else:
            role = "assistant" if role == "assistant" else "user"
            blocks = [{"type": "text", "text": _text(message)}] if _text(message) else []
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                               "input": _json(function.get("arguments"))})  # fmt: skip
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), turns


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # text + image parts: the text is what Messages gets here
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content or ""


def _json(arguments: Any) -> Any:
    try:
        return json.loads(arguments) if isinstance(arguments, str) else (arguments or {})
    except ValueError:
        return {"arguments": arguments}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function", tool)
    found = {"name": function.get("name"), "input_schema": function.get("parameters") or {"type": "object"}}
    if function.get("description"):
        found["description"] = function["description"]
    return found


def _completion(response: Any) -> Completion:
    texts, calls = [], []
    for block in response.content or []:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append({"id": block.id, "name": block.name, "arguments": block.input})
    usage = response.usage
    cached = (getattr(usage, "cache_read_input_tokens", None) or 0) if usage else 0
    written = (getattr(usage, "cache_creation_input_tokens", None) or 0) if usage else 0
    stop = response.stop_reason
    return Completion(
        text="".join(texts),
        tool_calls=calls,
        finish_reasons=[stop] if stop else [],
        refusal="refusal" if stop == "refusal" else None,
        input_tokens=usage.input_tokens + cached + written if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        cached_input_tokens=cached or None,
        response_model=response.model,
        response_id=response.id,
    )
