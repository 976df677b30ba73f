"""The simulated model's answers: a chat-completions request body in, the choices it gets out.

Pure and deterministic: no I/O, no clock, no global random state. Every choice is a roll in [0, 1)
drawn from a SHA-256 of the request, so the same request always gets the same answer, and the rules
(listed in order in replay/simulator.py's docstring) make the answer depend on the prompt in a way
one can predict. The HTTP layer (replay/simulator.py) validates the request before calling in here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from replay.sim_values import TOPIC, example_value, topic_of

REFUSAL = "I'm sorry, but I can't help with that."
# Other requests are refused only under a strict system prompt, so a replay under an unchanged prompt
# shows no refusal noise and a stricter prompt shows its own effect.
STRICT_REFUSAL_RATE = 0.22
# Wording that makes a system prompt strict (case-insensitive). The demo's support-answer v3 has two.
STRICT_PHRASES = (
    "if in doubt, refuse",
    "never discuss",
    "refuse any request",
    "unless the customer's identity is verified",
    "you must not",
    "do not help with",
)
# Requests refused whatever the prompt says: other people's accounts and personal data.
HARMFUL = re.compile(
    r"(ex-partner's|someone else's|another person's|my neighbou?r's) (account|email|phone)"
    r"|home address of|break into|hack into",
    re.IGNORECASE,
)
# JSON keys when the request asks for JSON without naming them: what each model snapshot answers with.
# The gpt-4o alias moved to the 2024-11-20 snapshot, whose answers have another shape (demo story 2).
SNAPSHOT_KEYS = {
    "gpt-4o-2024-08-06": ("summary", "sources", "confidence"),
    "gpt-4o-2024-11-20": ("answer", "citations", "confidence", "follow_up_questions"),
}
DEFAULT_KEYS = ("answer", "confidence")
# A small model that, asked for JSON in the prompt only (no response_format), often wraps it in prose.
FORMAT_SLIP = {"gpt-4.1-nano-2025-04-14": 0.35}
_KEYS_NAMED = re.compile(r"\b(?:keys|fields|properties)\b(?:\s+(?:named|called))?\s*:?\s*([^.\n;]+)", re.IGNORECASE)
_IDENT = re.compile(r"^[\"'`]?([A-Za-z_][A-Za-z0-9_]*)[\"'`]?$")
_CLASSIFY = re.compile(r"\bclassify\b[^:\n]*:\s*([^.\n]+)", re.IGNORECASE)
_SENTENCES = (
    "Thanks for reaching out.",
    "I have looked into this for you.",
    "Here is what I found.",
    "Happy to help with that.",
)
_DETAILS = (
    "Everything on our side looks in order, and the change will show within a day.",
    "I have made the change, and you will get a confirmation email shortly.",
    "The quickest fix is in your account settings; the steps are on our help page.",
    "This is a known issue and a fix ships this week.",
)


@dataclass(frozen=True)
class Choice:
    """One simulated choice: text content or a refusal, or tool calls."""

    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"


def text_of(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English with OpenAI's tokenizers."""
    return math.ceil(len(text) / 4) if text else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    """Message overhead as OpenAI documents it (3 a message, 3 to prime the reply) plus the estimated text."""
    total = 3 + sum(3 + estimate_tokens(text_of(m.get("content"))) for m in body["messages"])
    return total + (estimate_tokens(json.dumps(body["tools"])) if body.get("tools") else 0)


def roll(*parts: Any) -> float:
    """A number in [0, 1) that depends only on `parts`."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def answer(body: dict[str, Any], model: str, index: int = 0) -> Choice:
    """Choice `index` for a validated request to the (resolved) `model`; the rules in order."""
    messages = body["messages"]
    system = " ".join(text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    user = _last(messages, "user")
    conversation = [m for m in messages if m.get("role") not in ("system", "developer")]
    seed = (model, conversation, body.get("seed"), index)

    labels = _labels(system)
    if labels:
        return Choice(content=_classify(labels, user))
    # The refusal roll ignores the system prompt, so the same conversations are refused under any
    # strict prompt, and a prompt change alone decides whether they are.
    strict = any(p in system.lower() for p in STRICT_PHRASES)
    if HARMFUL.search(user) or (strict and roll("refusal", seed) < STRICT_REFUSAL_RATE):
        structured = (body.get("response_format") or {}).get("type") == "json_schema"
        return Choice(refusal=REFUSAL) if structured else Choice(content=REFUSAL)
    tool_call = _tool_call(body, messages, user, seed)
    if tool_call:
        return Choice(tool_calls=[tool_call], finish_reason="tool_calls")
    return Choice(content=_content(body, messages, model, user, seed))


def _last(messages: list[dict[str, Any]], role: str) -> str:
    return next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == role), "")


def _labels(system: str) -> list[str]:
    match = _CLASSIFY.search(system)
    return [w for w in re.split(r"\s*(?:,|\bor\b)\s*", match.group(1).strip()) if _IDENT.match(w)] if match else []


def _classify(labels: list[str], user: str) -> str:
    """The first label that appears as a word in the user's message, else the last label ("other")."""
    words = set(re.findall(r"[a-z]+", user.lower()))
    return next((label for label in labels if label.lower() in words), labels[-1])


def _tool_call(body, messages, user: str, seed) -> dict[str, Any] | None:
    """Call a tool when one is forced, or (auto) when the user's message names it and no tool answered yet."""
    tools = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or messages[-1].get("role") == "tool":
        return None
    if isinstance(choice, dict):
        chosen = next((t for t in tools if t["name"] == choice.get("function", {}).get("name")), None)
    elif choice == "required":
        chosen = _named(tools, user) or tools[0]
    else:
        chosen = _named(tools, user)
    if chosen is None:
        return None
    schema = chosen.get("parameters") or {"type": "object", "properties": {}}
    arguments = example_value(schema, context={TOPIC: topic_of(user), "text": user}, seed=seed)
    call_id = f"call_{hashlib.sha256(json.dumps(seed, default=str).encode()).hexdigest()[:24]}"
    return {"id": call_id, "type": "function", "function": {"name": chosen["name"], "arguments": json.dumps(arguments)}}


def _named(tools: list[dict[str, Any]], user: str) -> dict[str, Any] | None:
    words = set(re.findall(r"[a-z]+", user.lower()))
    return next((t for t in tools if any(w in words for w in t["name"].lower().split("_") if len(w) > 3)), None)


def _content(body, messages, model: str, user: str, seed) -> str:
    fmt = body.get("response_format") or {}
    context = {TOPIC: topic_of(user), "text": user}
    if fmt.get("type") == "json_schema":
        return json.dumps(example_value(fmt["json_schema"]["schema"], context=context, seed=seed))
    prompt_text = " ".join(text_of(m.get("content")) for m in messages if m.get("role") != "assistant")
    if fmt.get("type") != "json_object" and "json" not in prompt_text.lower():
        return _prose(user, seed)
    keys = _keys_named(messages) or SNAPSHOT_KEYS.get(model, DEFAULT_KEYS)
    schema = {"type": "object", "properties": {key: {} for key in keys}}
    text = json.dumps(example_value(schema, context=context, seed=seed))
    if fmt.get("type") != "json_object" and roll("format_slip", seed) < FORMAT_SLIP.get(model, 0.0):
        return f"Sure! Here is the JSON you asked for:\n```json\n{text}\n```"
    return text


def _keys_named(messages: list[dict[str, Any]]) -> tuple[str, ...]:
    """Keys the prompt names ("with keys a, b and c", `{"a": ..., "b": ...}`); the latest message wins."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            continue
        text = text_of(message.get("content"))
        quoted = re.findall(r"\"([A-Za-z_]\w*)\"\s*:", text)
        if quoted:
            return tuple(dict.fromkeys(quoted))
        match = _KEYS_NAMED.search(text)
        keys = _leading_names(match.group(1)) if match else []
        if len(keys) >= 2:  # one word after "keys" is more likely prose than a list
            return tuple(dict.fromkeys(keys))
    return ()


def _leading_names(text: str) -> list[str]:
    """The identifiers of a list like "a, b and c about the outage": up to the first part that is not one."""
    names = []
    for part in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", text.strip()):
        words = part.split()
        name = _IDENT.match(words[0]) if words else None
        if name is None:
            break
        names.append(name.group(1))
        if len(words) > 1:
            break
    return names


def _prose(user: str, seed) -> str:
    """Two or three plain sentences; an order or ticket number in the question is echoed back."""
    opening = _SENTENCES[int(roll("opening", seed) * len(_SENTENCES))]
    detail = _DETAILS[int(roll("detail", seed) * len(_DETAILS))]
    number = re.search(r"#\d+", user)
    middle = f" About {number.group(0)}: " if number else " "
    return opening + middle + detail
