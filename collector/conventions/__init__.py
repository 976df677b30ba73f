"""What every convention reader shares: safe value coercion, JSON, and key grouping.

Comes in: decoded span attributes (plain Python, see `collector.attributes`), which may hold
anything: wrong types, invalid JSON, huge or deeply nested values. Goes out: typed scalars or
None, and the span's flattened `prefix.N.rest` keys grouped in one pass. Nothing here raises on
bad input; an unreadable value becomes None. Pure, no I/O.

One module per convention (`otel_genai`, `openllmetry`, `openinference`) builds on these, and on
`messages` for the one message shape they all produce.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

_INT64_MAX = 2**63 - 1
# Flattened families: `<prefix><N>.<rest>`, grouped once per span as {N: {rest: value}}.
INDEXED_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.tools.",
    "llm.request.functions.",
    "embedding.embeddings.",
)
# Open families: `<prefix><rest>`, grouped as {rest: value}. Checked after INDEXED_PREFIXES,
# because "llm.request.functions." is also under "llm.request.".
PREFIXED = (
    "gen_ai.request.",
    "gen_ai.openai.request.",
    "llm.request.",
    "traceloop.prompt.template_variables.",
    "traceloop.",
)
_ALL_PREFIXES = INDEXED_PREFIXES + PREFIXED


@dataclass(slots=True)
class Keys:
    """The span's flattened and prefixed attribute families, from a single pass over the keys."""

    indexed: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    prefixed: dict[str, dict[str, Any]] = field(default_factory=dict)


def group_keys(attrs: dict[str, Any]) -> Keys:
    keys = Keys()
    places = _PLACES
    for key, value in attrs.items():
        # Spans of one service repeat the same few dozen keys: where a key goes is looked up once.
        try:
            place = places[key]
        except KeyError:
            place = _place(key)
            if len(places) < _MAX_PLACES and len(key) < 256:
                places[key] = place
        if place is None:
            continue
        prefix, index, rest = place
        if index is None:
            keys.prefixed.setdefault(prefix, {})[rest] = value
        else:
            keys.indexed.setdefault(prefix, {}).setdefault(index, {})[rest] = value
    return keys


_PLACES: dict[str, tuple[str, int | None, str] | None] = {}
_MAX_PLACES = 20_000  # a sender inventing keys without end must not grow the cache without end


def _place(key: str) -> tuple[str, int | None, str] | None:
    """(prefix, N or None for an open family, rest) of a grouped key; None for any other key."""
    if not key.startswith(_ALL_PREFIXES):  # one C-level check for the common case
        return None
    if key.startswith(INDEXED_PREFIXES):
        for prefix in INDEXED_PREFIXES:
            if key.startswith(prefix):
                index, _, rest = key[len(prefix) :].partition(".")
                if index.isdigit() and rest and len(index) < 7:
                    return prefix, int(index), rest
                return None
    for prefix in PREFIXED:
        if key.startswith(prefix):
            return prefix, None, key[len(prefix) :]
    return None


def subgroup(fields: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """`{"tool_calls.0.id": x}` with prefix "tool_calls." → `{0: {"id": x}}`."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if index.isdigit() and rest and len(index) < 7:
                out.setdefault(int(index), {})[rest] = value
    return out


# -- scalars -------------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    """Token-count style: int, integral float or numeric string; negative or > int64 → None."""
    if type(value) is int:
        number = value
    elif type(value) is float:
        if not math.isfinite(value):
            return None
        number = int(value)
    elif isinstance(value, str) and 0 < len(value) < 32:
        try:
            number = int(value.strip())
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                return None
            if not math.isfinite(as_float):
                return None
            number = int(as_float)
    else:
        return None  # bool, list, dict, None, absurdly long strings
    return number if 0 <= number <= _INT64_MAX else None


def as_float(value: Any) -> float | None:
    if type(value) in (int, float):
        number = float(value)
    elif isinstance(value, str) and 0 < len(value) < 32:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_str(value: Any) -> str | None:
    """A scalar as text; empty, containers and None → None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if type(value) in (int, float):
        return str(value)
    return None


def as_bool(value: Any) -> bool | None:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(value.strip().lower())
    return None


def first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def first_str(attrs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None and (text := as_str(value)) is not None:
            return text
    return None


def first_bool(attrs: dict[str, Any], keys: tuple[str, ...]) -> bool | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None and (flag := as_bool(value)) is not None:
            return flag
    return None


def first_int(attrs: dict[str, Any], keys: tuple[str, ...]) -> tuple[int | None, bool]:
    """First readable count among `keys`, and whether an unreadable one was seen on the way."""
    unreadable = False
    for key in keys:
        value = attrs.get(key)
        if value is None:
            continue
        number = as_int(value)
        if number is not None:
            return number, False
        unreadable = True
    return None, unreadable


# -- JSON ----------------------------------------------------------------------------------


def loads(value: Any) -> Any:
    """JSON text → value; already-structured values pass through; bad JSON → None."""
    if isinstance(value, str):
        text = value.strip()
        if not text or text[0] not in '[{"':
            return None
        try:
            return orjson.loads(text)
        except (ValueError, RecursionError):
            return None
    return value


# The stdlib encoder is the fallback for what orjson refuses (ints past 64 bits, non-string keys).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def dumps(value: Any) -> str | None:
    """Compact JSON text; orjson because JSON encoding is a large share of the per-span cost."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return _ENCODER.encode(value)
    except (ValueError, TypeError, RecursionError):
        return None


def maybe_json(value: Any) -> Any:
    """Tool-call arguments: the parsed object when `value` is JSON text, else `value` itself."""
    if isinstance(value, str):
        parsed = loads(value)
        return value if parsed is None else parsed
    return value


def json_object(value: Any) -> dict[str, Any] | None:
    parsed = loads(value)
    return parsed if isinstance(parsed, dict) else None
