"""A stored call + a prompt version → the chat request to send: messages, model, parameters, tools.

Comes in: one replay-set row (the original call's `input_messages` in the OTel GenAI shape,
`request_params`, `tool_definitions`, `prompt_template`, `prompt_variables`), the candidate
`PromptVersion` and the run's overrides. Goes out: a `ChatRequest` in the Chat Completions shape.
Must not: send anything the original did not have except what the new version changes, or
leave a request without `max_tokens` (it bounds the call's cost).

Where the new template goes: the message whose text equals the old template rendered with the
call's variables (the message the old version produced); when no message matches (no old
template, or the application edited the text) the last message of the template's role. The new
version's system prompt replaces the first system message, or is put first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from replay.prompts import PromptError, PromptVersion, render

# Stored request parameter (gen_ai.request.* names) → Chat Completions argument.
_PARAMS = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop_sequences": "stop",
    "stop": "stop",
    "choice.count": "n",
    "n": "n",
    "response_format": "response_format",
}


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)  # Chat Completions arguments; max_tokens always set
    tools: list[dict[str, Any]] | None = None
    placement: str = "none"  # where the new template went: matched | by_role | none

    def to_json(self) -> str:
        body = {"model": self.model, "messages": self.messages, **self.params}
        if self.tools:
            body["tools"] = self.tools
        return json.dumps(body, sort_keys=True)


def build_request(
    case: dict[str, Any],
    version: PromptVersion | None,
    model: str | None = None,
    default_max_tokens: int = 1024,
) -> ChatRequest:
    messages = to_chat_messages(_loads(case.get("input_messages")) or [])
    variables = _loads(case.get("prompt_variables")) or {}
    placement = "none"
    if version is not None:
        placement = _apply_template(messages, case.get("prompt_template"), version, variables)
        if version.system_prompt is not None:
            _set_system(messages, render(version.system_prompt, variables))
    params = _chat_params(_loads(case.get("request_params")) or {})
    if version is not None:
        params |= _chat_params(version.params)
    params["max_tokens"] = int(params.get("max_tokens") or default_max_tokens)
    params.pop("n", None)  # one answer per replayed call: the comparison is pairwise
    chosen = model or (version.model if version else None) or case.get("request_model") or case.get("response_model")
    if not chosen:
        raise PromptError("the call has no model; pass --model")
    tools = [_chat_tool(t) for t in _loads(case.get("tool_definitions")) or []] or None
    return ChatRequest(chosen, messages, params, tools, placement)


def _apply_template(
    messages: list[dict[str, Any]], old_template: str | None, version: PromptVersion, variables: dict
) -> str:
    new_text = render(version.template, variables)
    if old_template:
        try:
            old_text = render(old_template, variables)
        except PromptError:
            old_text = None
        for message in messages:
            if old_text is not None and message.get("content") == old_text:
                message["content"] = new_text
                return "matched"
    for message in reversed(messages):
        if message.get("role") == version.role:
            message["content"] = new_text
            return "by_role"
    messages.insert(0 if version.role == "system" else len(messages), {"role": version.role, "content": new_text})
    return "by_role"


def _set_system(messages: list[dict[str, Any]], text: str) -> None:
    for message in messages:
        if message.get("role") in ("system", "developer"):
            message["content"] = text
            return
    messages.insert(0, {"role": "system", "content": text})


def to_chat_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """OTel GenAI messages (`{"role", "parts": [...]}`, or plain `{"role", "content"}`) → Chat Completions."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role") or "user"
        parts = message.get("parts")
        if parts is None:
            parts = [{"type": "text", "content": message.get("content")}]
        texts = [_text(p) for p in parts if isinstance(p, dict) and p.get("type") in ("text", None)]
        images = [p for p in parts if isinstance(p, dict) and p.get("type") == "uri"]
        calls = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"]
        responses = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call_response"]
        for response in responses:  # one tool message per answered call
            out.append({"role": "tool", "tool_call_id": response.get("id"), "content": _text(response, "response")})
        if responses and not (texts or calls):
            continue
        content: Any = "\n".join(t for t in texts if t)
        if images:
            content = [{"type": "text", "text": content}] if content else []
            content += [{"type": "image_url", "image_url": {"url": p.get("uri")}} for p in images]
        chat: dict[str, Any] = {"role": "assistant" if role == "model" else role, "content": content or None}
        if calls:
            chat["tool_calls"] = [
                {"id": c.get("id"), "type": "function", "function": {"name": c.get("name"), "arguments": _args(c)}}
                for c in calls
            ]
        if chat["content"] is None and not calls:
            chat["content"] = ""
        out.append(chat)
    return out


def _text(part: dict[str, Any], key: str = "content") -> str:
    value = part.get(key)
    return value if isinstance(value, str) else json.dumps(value)


def _args(call: dict[str, Any]) -> str:
    arguments = call.get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def _chat_params(stored: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for name, value in stored.items():
        target = _PARAMS.get(name)
        if target is not None and value is not None:
            params[target] = value
    fmt = params.get("response_format")
    if isinstance(fmt, str):  # a bare type name ("json_object", "json") as some instrumentations store it
        params["response_format"] = {"type": "json_object" if fmt in ("json", "json_object") else fmt}
    return params


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if "function" in tool:
        return tool
    function = {k: v for k, v in tool.items() if k != "type"}
    return {"type": tool.get("type", "function"), "function": function}


def _loads(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None
