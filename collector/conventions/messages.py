"""The OTel GenAI message shape, built from whatever shape a convention sent.

Comes in: messages and content parts as GenAI (`{"role", "parts"}`), OpenAI chat (`content`,
`tool_calls`, `refusal`), Anthropic (`tool_use`, `tool_result`, `thinking`) or OpenLLMetry's JSON
text of a part list. Goes out: `{"role", "parts": [...], "name"?, "finish_reason"?}` with parts
`{"type": "text", "content"}`, `{"type": "tool_call", "id", "name", "arguments"}` (arguments
parsed when JSON text), `{"type": "tool_call_response", "id", "response"}`, `{"type": "refusal",
"content"}`, `{"type": "uri", "modality", "uri"}`, `{"type": "reasoning", "content"}`; parts of
any other type are kept as sent. Never raises.
"""

from __future__ import annotations

from typing import Any

from collector.conventions import as_str, loads, maybe_json


def text_part(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": as_str(call_id), "name": as_str(name), "arguments": maybe_json(arguments)}


def to_part(part: Any) -> dict[str, Any] | None:
    """One content part from any of the shapes in use (GenAI, OpenAI, Anthropic) → GenAI shape."""
    if isinstance(part, str):
        return text_part(part)
    if not isinstance(part, dict):
        return None if part is None else text_part(part)
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text") or (kind is None and "text" in part):
        content = part.get("content", part.get("text"))
        return text_part("" if content is None else content)
    if kind == "tool_call":
        return part | {"arguments": maybe_json(part.get("arguments"))}
    if kind == "tool_use":  # Anthropic
        return tool_call_part(part.get("id"), part.get("name"), part.get("input"))
    if kind == "function_call":  # OpenAI Responses API output item
        return tool_call_part(part.get("call_id", part.get("id")), part.get("name"), part.get("arguments"))
    if kind == "tool_result":  # Anthropic
        return {"type": "tool_call_response", "id": as_str(part.get("tool_use_id")), "response": part.get("content")}
    if kind == "refusal":
        return {"type": "refusal", "content": part.get("content", part.get("refusal"))}
    if kind == "thinking":  # Anthropic
        return {"type": "reasoning", "content": part.get("thinking")}
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"type": "uri", "modality": "image", "uri": url}
    if kind is None and isinstance(part.get("content"), str):
        return text_part(part["content"])
    return part  # already GenAI-shaped (blob, uri, reasoning, ...) or unknown: keep as sent


def to_parts(content: Any) -> list[dict[str, Any]]:
    """Message content: text, a list of parts, or (OpenLLMetry multimodal) JSON text of one."""
    if content is None:
        return []
    if isinstance(content, str):
        if content[:1] == "[" and '"type"' in content:
            parsed = loads(content)
            if isinstance(parsed, list) and all(isinstance(p, dict) and "type" in p for p in parsed):
                return to_parts(parsed)
        return [text_part(content)]
    if isinstance(content, list):
        return [p for p in map(to_part, content) if p is not None]
    part = to_part(content)
    return [part] if part is not None else []


def to_message(message: Any, default_role: str) -> dict[str, Any] | None:
    """A message in GenAI shape, or in OpenAI chat shape (`content`, `tool_calls`), → GenAI shape."""
    if isinstance(message, str):
        return {"role": default_role, "parts": [text_part(message)]}
    if not isinstance(message, dict):
        return None
    role = as_str(message.get("role")) or default_role
    parts = message.get("parts")
    if isinstance(parts, list):
        parts = [p for p in map(to_part, parts) if p is not None]
    elif role == "tool" and message.get("tool_call_id") is not None:
        call_id = as_str(message["tool_call_id"])
        parts = [{"type": "tool_call_response", "id": call_id, "response": message.get("content")}]
    else:
        parts = to_parts(message.get("content"))
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                function = call.get("function")
                function = function if isinstance(function, dict) else call
                parts.append(tool_call_part(call.get("id"), function.get("name"), function.get("arguments")))
        if isinstance(message.get("refusal"), str):
            parts.append({"type": "refusal", "content": message["refusal"]})
    out: dict[str, Any] = {"role": role, "parts": parts}
    if as_str(message.get("name")):
        out["name"] = as_str(message["name"])
    if as_str(message.get("finish_reason")):
        out["finish_reason"] = as_str(message["finish_reason"])
    return out


def to_messages(value: Any, default_role: str) -> list[dict[str, Any]] | None:
    """`gen_ai.*.messages` as JSON text or structured list; plain text → one message."""
    parsed = loads(value)
    if parsed is None:
        if isinstance(value, str) and value.strip():
            return [{"role": default_role, "parts": [text_part(value)]}]
        return None
    if isinstance(parsed, (dict, str)):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return None
    if isinstance(value, str) and _canonical(parsed):  # freshly parsed, as to_message would build it
        return parsed or None
    messages = [m for m in (to_message(item, default_role) for item in parsed) if m is not None]
    return messages or None


# Key orders to_message builds; a message in one of them, with text parts only, comes out as it went in.
_MESSAGE_KEYS = frozenset(
    {
        ("role", "parts"),
        ("role", "parts", "finish_reason"),
        ("role", "parts", "name"),
        ("role", "parts", "name", "finish_reason"),
    }
)
_TEXT_PART_KEYS = ("type", "content")


def _canonical(messages: list) -> bool:
    """Already in the GenAI shape to_message makes: roles, names and finish reasons non-empty and
    stripped, every part exactly `{"type": "text", "content": str}`. (OTel GenAI senders send this.)"""
    for message in messages:
        if type(message) is not dict or tuple(message) not in _MESSAGE_KEYS or type(message["parts"]) is not list:
            return False
        for key in ("role", "name", "finish_reason"):
            value = message.get(key, "x")
            if type(value) is not str or not value or value.strip() != value:
                return False
        for part in message["parts"]:
            if type(part) is not dict or tuple(part) != _TEXT_PART_KEYS or part["type"] != "text":
                return False
            if type(part["content"]) is not str:
                return False
    return True


def tool_definition(tool: Any) -> Any:
    """Chat Completions `{"type": "function", "function": {...}}` → flat GenAI `{"type", "name", ...}`."""
    tool = loads(tool) if isinstance(tool, str) else tool
    if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
        return {"type": tool.get("type", "function"), **tool["function"]}
    return tool


def summarize_outputs(outputs: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]], str | None]:
    """(output_text, tool_calls, refusal) of output messages. Text parts concatenate within a
    message; messages (choices, or Responses API output items) join with a newline."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    refusal = None
    for message in outputs:
        text = []
        for part in message["parts"]:
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("content"), str):
                text.append(part["content"])
            elif kind == "tool_call":
                calls.append({"id": part.get("id"), "name": part.get("name"), "arguments": part.get("arguments")})
            elif kind == "refusal" and refusal is None:
                refusal = as_str(part.get("content"))
        if text:
            texts.append("".join(text))
    return ("\n".join(texts) if texts else None), calls, refusal
