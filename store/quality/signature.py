"""The structure of an LLM output as a short canonical string, so shape changes can be counted.

Comes in: an output's text and its tool calls. Goes out: a `Signature` (format, signature, keys,
length). Pure, no I/O, never raises. The same structure always gives the same string, whatever
the values, so a distribution of signatures over a window is meaningful:
- json (the whole output, bare or in a ```json fence; or one JSON fence inside prose):
  `json:{a:str,b:[{c:num}]}`: sorted keys with value types (str, num, bool, null), arrays as the
  union of their element shapes; `json(embedded):` when prose surrounds the fence. keys are the
  key paths (`b[].c`).
- markdown: the block skeleton, runs of one block kind collapsed: `md:h1>p>h2>ul>code(python)>table(3)`
  (heading levels, lists, ordered lists, code blocks with their language, tables with their column
  count, quotes); item counts are left out because they vary with content, not with shape.
- text: a length bucket, `text:xs|s|m|l|xl` (< 20, < 100, < 500, < 2000, more characters).
- tool calls: `tools:[lookup_order,search]` (sorted names); after the text's signature with `+` when
  the output has both.
Long signatures are cut to SIGNATURE_CHARS and end with `~` and a hash of the whole, so two
different long shapes never collide and the stored string stays short.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_CHARS = 160
MAX_DEPTH = 8
MAX_KEYS = 200
_BUCKETS = ((20, "xs"), (100, "s"), (500, "m"), (2000, "l"))
_FENCE = re.compile(r"^```[ \t]*([\w+#-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_WHOLE_FENCE = re.compile(r"\A\s*```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)\n?```\s*\Z", re.S)
_BLOCKS = (
    (re.compile(r"^(#{1,6})\s"), None),
    (re.compile(r"^\s*[-*+]\s+\S"), "ul"),
    (re.compile(r"^\s*\d+[.)]\s+\S"), "ol"),
    (re.compile(r"^\s*\|.*\|\s*$"), "table"),
    (re.compile(r"^\s*>"), "quote"),
)
_BLOCK_MARKS = frozenset("#-*+|>")  # and digits: what the patterns of _BLOCKS can start with
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")


@dataclass(slots=True)  # not frozen: see collector.normalize.SpanFacts
class Signature:
    format: str  # json | markdown | text | tool_calls | empty
    signature: str
    keys: list[str] = field(default_factory=list)
    length: int = 0


def output_signature(text: str | None, tool_calls: Any = None) -> Signature:
    text = text if isinstance(text, str) else ""
    tools = _tool_names(tool_calls)
    tool_part = f"tools:[{','.join(tools)}]" if tools else ""
    if not text.strip():
        if tool_part:
            return Signature("tool_calls", _short(tool_part), [], len(text))
        return Signature("empty", "empty", [], len(text))
    found = _json_of(text)
    if found is not None:
        value, prefix = found
        keys: list[str] = []
        fmt, sig = "json", f"{prefix}:{_shape(value, 0, '', keys)}"
        keys = sorted(set(keys))[:MAX_KEYS]
    else:
        keys = []
        skeleton = _markdown_skeleton(text)
        fmt, sig = ("markdown", f"md:{skeleton}") if skeleton else ("text", f"text:{_bucket(len(text))}")
    if tool_part:
        sig = f"{sig}+{tool_part}"
    return Signature(fmt, _short(sig), keys, len(text))


def _json_of(text: str) -> tuple[Any, str] | None:
    """(parsed value, signature prefix) when the output is JSON, or holds one JSON fence."""
    stripped = text.strip()
    whole = _WHOLE_FENCE.match(stripped)
    candidate = whole.group(1).strip() if whole else stripped
    if candidate[:1] in ("{", "["):
        value = _loads(candidate)
        if value is not None:
            return value, "json"
    if "```" not in text:
        return None
    fences = [body for lang, body in _FENCE.findall(text) if lang.lower() == "json"]
    if len(fences) == 1:
        value = _loads(fences[0].strip())
        if isinstance(value, dict | list):
            return value, "json(embedded)"
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _shape(value: Any, depth: int, path: str, keys: list[str]) -> str:
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return "{…}"
        items = []
        for key in sorted(value, key=str):
            child = f"{path}.{key}" if path else str(key)
            if len(keys) < MAX_KEYS * 2:
                keys.append(child)
            items.append(f"{_key(key)}:{_shape(value[key], depth + 1, child, keys)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return "[…]"
        return _list_shape(value, depth, f"{path}[]", keys)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    return "null"


def _list_shape(items: list, depth: int, path: str, keys: list[str]) -> str:
    """Element shapes, with the objects merged into one: a key missing from some of them is
    optional (`k?`), so a list's signature does not depend on which records it happened to hold."""
    shapes = {_shape(item, depth + 1, path, keys) for item in items if not isinstance(item, dict)}
    records = [item for item in items if isinstance(item, dict)]
    if records:
        values: dict[str, list[Any]] = {}
        for record in records:
            for key, child in record.items():
                values.setdefault(str(key), []).append(child)
        merged = []
        for key in sorted(values):
            child_path = f"{path}.{key}"
            if len(keys) < MAX_KEYS * 2:
                keys.append(child_path)
            child = "|".join(sorted({_shape(v, depth + 2, child_path, keys) for v in values[key]}))
            optional = "?" if len(values[key]) < len(records) else ""
            merged.append(f"{_key(key)}{optional}:{child}")
        shapes.add("{" + ",".join(merged) + "}")
    return "[" + "|".join(sorted(shapes)) + "]"


def _key(key: Any) -> str:
    key = str(key)
    return key if re.fullmatch(r"[\w.$@-]+", key) else json.dumps(key, ensure_ascii=False)


def _markdown_skeleton(text: str) -> str:
    """Block kinds in order, runs collapsed; '' when there is no markdown structure at all."""
    blocks: list[str] = []
    structured = False
    in_code = False
    for line in text.splitlines():
        start = line.lstrip()
        if start.startswith("```"):
            if not in_code:
                lang = start[3:].strip().split(" ")[0].lower()
                blocks.append(f"code({lang})" if lang else "code")
                structured = True
            in_code = not in_code
            continue
        if in_code or not start:
            continue
        # Only a line that starts (after spaces) with a block's mark can be more than a paragraph.
        kind = _block_kind(line) if start[0] in _BLOCK_MARKS or start[0].isdecimal() else "p"
        if kind == "table" and _TABLE_RULE.match(line):
            continue
        if kind != "p":
            structured = True
        if kind.startswith("table") and blocks and blocks[-1].startswith("table"):
            continue
        blocks.append(kind)
    if not structured:
        return ""
    collapsed: list[str] = []
    for kind in blocks:
        if not collapsed or collapsed[-1] != kind:
            collapsed.append(kind)
    return ">".join(collapsed)


def _block_kind(line: str) -> str:
    for pattern, kind in _BLOCKS:
        match = pattern.match(line)
        if match:
            if kind is None:
                return f"h{len(match.group(1))}"
            if kind == "table":
                return f"table({max(line.strip().strip('|').count('|') + 1, 1)})"
            return kind
    return "p"


def _bucket(length: int) -> str:
    for limit, name in _BUCKETS:
        if length < limit:
            return name
    return "xl"


def _tool_names(tool_calls: Any) -> list[str]:
    if isinstance(tool_calls, str):
        tool_calls = _loads(tool_calls)
    if not isinstance(tool_calls, list):
        return []
    names = set()
    for call in tool_calls:
        if isinstance(call, dict):
            function = call.get("function")
            name = (function if isinstance(function, dict) else call).get("name")
            names.add(str(name) if name is not None else "?")
    return sorted(names)


def _short(signature: str) -> str:
    if len(signature) <= SIGNATURE_CHARS:
        return signature
    digest = hashlib.blake2b(signature.encode(), digest_size=6).hexdigest()
    return f"{signature[: SIGNATURE_CHARS - 14]}~{digest}"
