"""Example JSON values for the simulated model: a JSON Schema (or just key names) in, a value that fits out.

Pure and deterministic (seeded rolls, no global random state). A value follows the schema (types,
enum, const, $ref/$defs, anyOf, required and optional properties, min/max items and bounds), and
where the schema leaves it open the key's name picks something plausible from the prompt: `summary`
and `answer` talk about its topic, `sources`/`citations` list the URLs it mentions, `confidence` is
a score, `*_id` takes a number from the text. Must not: invent keys the schema does not have.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

TOPIC = "topic"
_URL = re.compile(r"https?://[^\s\"'<>),]+")
_ABOUT = re.compile(r"\babout (.+?)(?:\s+using\b|[.:?!]|$)", re.IGNORECASE)


def topic_of(text: str) -> str:
    """What a prompt is about: the words after "about", else its first few words."""
    match = _ABOUT.search(text)
    if match:
        return match.group(1).strip()
    return " ".join(re.findall(r"[\w'#-]+", text)[:6]) or "your question"


def example_value(schema: dict[str, Any], *, context: dict[str, str], seed: Any, name: str = "") -> Any:
    return _value(schema, schema, context, (seed, name), name)


def _roll(seed: Any, label: str) -> float:
    digest = hashlib.sha256(json.dumps([seed, label], default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _value(schema: Any, root: dict[str, Any], context: dict[str, str], seed: Any, name: str) -> Any:
    if not isinstance(schema, dict):
        return _by_name(name, context, seed)
    if "$ref" in schema:
        return _value(_resolve(schema["$ref"], root), root, context, seed, name)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][int(_roll(seed, "enum") * len(schema["enum"]))]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")] or options
        return _value(usable[0], root, context, seed, name)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {key: _value(sub, root, context, (seed, key), key) for key, sub in props.items()}
    if kind == "array":
        low, high = schema.get("minItems", 1), schema.get("maxItems", 3)
        count = max(low, min(high, 1 + int(_roll(seed, "items") * 2)))
        item = schema.get("items") or {}
        singular = name[:-1] if name.endswith("s") else name
        return [_value(item, root, context, (seed, i), singular) for i in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind, name, context, seed)
    if kind == "boolean":
        return _roll(seed, "bool") < 0.5
    if kind == "null":
        return None
    if kind == "string":
        return _string(schema, name, context, seed)
    return _by_name(name, context, seed)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """A local reference (#/$defs/X, #/definitions/X, #): the only kind structured outputs allow."""
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _number(schema: dict[str, Any], kind: str, name: str, context: dict[str, str], seed: Any) -> float | int:
    hinted = _by_name(name, context, seed)
    low, high = schema.get("minimum", 0), schema.get("maximum", 100 if kind == "integer" else 1)
    if isinstance(hinted, int | float) and not isinstance(hinted, bool) and low <= hinted <= high:
        return int(hinted) if kind == "integer" else hinted
    value = low + _roll(seed, "number") * (high - low)
    return int(value) if kind == "integer" else round(value, 2)


def _string(schema: dict[str, Any], name: str, context: dict[str, str], seed: Any) -> str:
    formats = {"date-time": "2026-11-20T12:00:00Z", "date": "2026-11-20", "email": "customer@example.com"}
    if schema.get("format") in formats:
        return formats[schema["format"]]
    value = _by_name(name, context, seed)
    if schema.get("format") in ("uri", "url") or not isinstance(value, str):
        value = _urls(context)[0] if schema.get("format") in ("uri", "url") else str(value)
    return value[: schema["maxLength"]] if "maxLength" in schema else value


def _urls(context: dict[str, str]) -> list[str]:
    found = list(dict.fromkeys(_URL.findall(context.get("text", ""))))
    slug = re.sub(r"[^a-z0-9]+", "-", context.get(TOPIC, "").lower()).strip("-") or "source"
    return found or [f"https://example.com/{slug}"]


def _by_name(name: str, context: dict[str, str], seed: Any) -> Any:
    """A value for a key whose schema says nothing more than its name."""
    topic, key = context.get(TOPIC, "your question"), name.lower()
    if key in ("summary", "answer", "text", "content", "description", "reply", "message"):
        return f"{topic}: three developments this month."
    if key in ("sources", "urls", "links", "references"):
        return _urls(context)[:2]
    if key in ("source", "url", "link", "uri"):
        return _urls(context)[0]
    if key == "citations":
        return [{"url": url, "title": f"Report on {topic}"} for url in _urls(context)[:2]]
    if key in ("confidence", "score", "probability", "certainty"):
        return round(0.5 + 0.45 * _roll(seed, "confidence"), 2)
    if key in ("follow_up_questions", "questions", "next_questions"):
        return [f"How does {topic} affect pricing?"]
    if key.startswith(("is_", "has_")):
        return _roll(seed, "flag") < 0.5
    if key in ("count", "total", "line", "number") or key.startswith(("n_", "num_")):
        return 1 + int(_roll(seed, "count") * 20)
    if key == "id" or key.endswith("_id"):
        number = re.search(r"\d{3,}", context.get("text", ""))
        return number.group(0) if number else hashlib.sha256(json.dumps(seed, default=str).encode()).hexdigest()[:8]
    if key.endswith("s") and len(key) > 3:
        return [_by_name(key[:-1], context, (seed, 0))]
    if key in ("title", "name", "label", "category", "file"):
        return f"{topic}"[:60]
    return f"{topic}"
