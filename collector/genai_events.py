"""GenAI log events → one row per message, to be joined to their LLM call.

Comes in: a log record's event name, body and attributes, already decoded to Python values.
Goes out: rows for `store.schema.LLM_MESSAGES_SCHEMA` (without ids and times, which the caller
adds), or [] for any other log. Pure, no I/O. Two generations of events are understood
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/):
- one event per message (semconv ≈1.28–1.36): `gen_ai.{system,user,assistant,tool}.message`
  with the message in the body, and `gen_ai.choice` with `{index, finish_reason, message}`;
- one event per call (≈1.37+): `gen_ai.client.inference.operation.details` with the whole
  conversation in `gen_ai.input.messages` / `gen_ai.output.messages` (and system instructions).
"""

from __future__ import annotations

from typing import Any

from collector.conventions import as_int, as_str, dumps, loads
from collector.conventions.messages import summarize_outputs, to_message, to_messages
from collector.quality import rules
from store.quality import message_quality_columns

_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
GENAI_EVENTS = frozenset({*_MESSAGE_EVENTS, CHOICE_EVENT, DETAILS_EVENT})


def decode_genai_event(name: str, body: Any, attrs: dict[str, Any], order: int) -> list[dict[str, Any]]:
    """Rows for one event; `order` keeps inputs of one call in the order they were sent."""
    if name in _MESSAGE_EVENTS:
        message = _input_message(body, _MESSAGE_EVENTS[name])
        return [_row("input", order, message, name)] if message else []
    if name == CHOICE_EVENT:
        return _choice_rows(body, name)
    if name == DETAILS_EVENT:
        return _details_rows(attrs, name)
    return []


def _input_message(body: Any, role: str) -> dict[str, Any] | None:
    if isinstance(body, dict):
        body = dict(body)
        body.setdefault("role", role)
        if role == "tool" and "tool_call_id" not in body and "id" in body:
            body["tool_call_id"] = body.pop("id")  # the event names it `id`
    return to_message(body, role)


def _choice_rows(body: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    message = {"role": "assistant", **message}
    if body.get("finish_reason") is not None:
        message["finish_reason"] = body["finish_reason"]
    normalized = to_message(message, "assistant")
    index = as_int(body.get("index"))
    return [_row("output", index if index is not None else 0, normalized, name)] if normalized else []


def _details_rows(attrs: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = []
    inputs = to_messages(attrs.get("gen_ai.input.messages"), "user") or []
    system = attrs.get("gen_ai.system_instructions")
    if system:
        # Fix: the parts were used as sent, so a list holding anything but objects (plain strings,
        # say) made summarize_outputs raise, and the whole acknowledged logs request was dropped.
        # Read them as `otel_genai.read_messages` does on spans: parts (or JSON text of them), else text.
        message = to_message({"role": "system", "parts": loads(system)}, "system")
        if message is None or not message["parts"]:
            message = to_message({"role": "system", "content": system}, "system")
        inputs = [message, *inputs]
    rows += [_row("input", i, message, name) for i, message in enumerate(inputs)]
    outputs = to_messages(attrs.get("gen_ai.output.messages"), "assistant") or []
    rows += [_row("output", i, message, name) for i, message in enumerate(outputs)]
    return rows


def _row(direction: str, position: int, message: dict[str, Any], name: str) -> dict[str, Any]:
    text, calls, refusal = summarize_outputs([message])
    row = {
        "direction": direction,
        "position": position,
        "message": dumps(message),
        "text": text,
        "tool_calls": dumps(calls) if calls else None,
        "refusal": refusal,
        "finish_reason": as_str(message.get("finish_reason")),
        "event_name": name,
    }
    if direction == "output":
        finish = row["finish_reason"]
        row.update(
            message_quality_columns(
                text, tool_calls=calls, finish_reason=finish, provider_refusal=refusal, rules=rules()
            )
        )
    return row
