"""TEMPORARY stand-ins for `store.quality` (branch `quality`), used only while it is not merged.

Same signatures as the shared contract (COMMON.md): `detect_refusal`, `output_signature`,
`validate_output`. Deliberately minimal: a handful of English refusal phrases, a JSON/markdown/text
shape, and JSON parseability. Delete this module once `store/quality/` exists; `replay.compare`
imports the real functions first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_REFUSAL = re.compile(
    r"\b(i can(?:no|')t (?:help|assist|comply)|i(?: am|'m) (?:unable|not able) to (?:help|assist)|"
    r"i (?:won't|will not) (?:help|assist))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Signature:
    format: str
    signature: str
    keys: list[str] = field(default_factory=list)
    length: int = 0


def detect_refusal(
    text: str | None, *, finish_reasons=(), provider_refusal: str | None = None, rules=None
) -> str | None:
    if provider_refusal:
        return "provider:refusal_field"
    if "content_filter" in (finish_reasons or ()):
        return "finish_reason:content_filter"
    return "fallback.cannot_assist" if text and _REFUSAL.search(text[:500]) else None


def output_signature(text: str | None, tool_calls: Any = None) -> Signature:
    if tool_calls:
        names = sorted(str(c.get("name")) for c in tool_calls if isinstance(c, dict))
        return Signature("tool_calls", "tool_calls:" + ",".join(names), [], len(text or ""))
    if not text or not text.strip():
        return Signature("empty", "empty", [], 0)
    try:
        value = json.loads(text)
    except ValueError:
        shape = "markdown" if re.search(r"^(#|\* |- |\d+\. |```)", text, re.MULTILINE) else "text"
        return Signature(shape, shape, [], len(text))
    keys = sorted(_paths(value, ""))
    return Signature("json", "json:" + ",".join(keys), keys, len(text))


def _paths(value: Any, prefix: str) -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, child in value.items():
            found |= {f"{prefix}{key}"} | _paths(child, f"{prefix}{key}.")
        return found
    if isinstance(value, list) and value:
        return _paths(value[0], f"{prefix}[].")
    return set()


def validate_output(text: str | None, request_params: dict | None) -> str | None:
    params = request_params or {}
    wanted = params.get("response_format") or params.get("output_type")
    kind = wanted.get("type") if isinstance(wanted, dict) else wanted
    if kind not in ("json", "json_object", "json_schema"):
        return None
    try:
        json.loads(text or "")
    except ValueError as exc:
        return f"not valid JSON: {exc}"
    return None
