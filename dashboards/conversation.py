"""LLM call messages (OTel GenAI JSON) → plain turns a page can show as a chat.

In: the JSON text of `llm_calls.input_messages` / `output_messages`,
`[{"role", "parts": [{"type": "text", "content"} | {"type": "tool_call", "name", "arguments"} | ...]}]`.
Out: `Turn(role, blocks)` where each block is markdown. Pure; malformed JSON becomes one block
holding the raw text, so nothing stored is ever hidden from the reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Turn:
    role: str
    blocks: tuple[str, ...]


def parse_messages(raw: str | None) -> list[Turn]:
    if raw is None or raw == "":
        return []
    try:
        messages = json.loads(raw)
    except ValueError:
        return [Turn("unknown", (_code(raw),))]
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        return [Turn("unknown", (_code(raw),))]
    return [_turn(message) for message in messages]


def _turn(message: Any) -> Turn:
    if not isinstance(message, dict):
        return Turn("unknown", (_code(json.dumps(message)),))
    parts = message.get("parts")
    if parts is None and "content" in message:  # a plain {"role", "content"} message
        parts = [{"type": "text", "content": message["content"]}]
    blocks = tuple(_block(part) for part in parts or [])
    if message.get("finish_reason"):
        blocks += (f"*finish reason: {message['finish_reason']}*",)
    return Turn(str(message.get("role") or "unknown"), blocks)


def _block(part: Any) -> str:
    if not isinstance(part, dict):
        return str(part)
    kind = part.get("type")
    if kind == "text" or (kind is None and "content" in part):
        content = part.get("content")
        return content if isinstance(content, str) else _code(json.dumps(content, indent=2))
    if kind == "tool_call":
        arguments = part.get("arguments")
        shown = arguments if isinstance(arguments, str) else json.dumps(arguments, indent=2)
        return f"🔧 **tool call** `{part.get('name', '?')}`\n\n{_code(shown)}"
    if kind == "tool_call_response":
        response = part.get("response", part.get("result"))
        shown = response if isinstance(response, str) else json.dumps(response, indent=2)
        return f"↩️ **tool result** `{part.get('id', '')}`\n\n{_code(shown)}"
    return f"*{kind or 'part'}*\n\n{_code(json.dumps(part, indent=2))}"


def _code(text: str) -> str:
    return f"```\n{text}\n```"
