"""Redaction of secrets and personal data in OTLP requests, before they are written anywhere.

Comes in: a parsed Export request and its serialized bytes (gunzipped). Goes out: the same
request with every matching piece of text replaced by `[REDACTED:<rule>]`, and the hits per
rule. Runs on the request path before the write-ahead log, so nothing unredacted ever reaches
the disk. Must not: edit serialized protobuf bytes in place (a changed length would corrupt the
length prefixes around it), nor cost much on clean requests.

So it works in two steps. One bytes regex (every rule's trigger, ORed) is searched in the raw
request: no hit, nothing to do, which is the common case. On a hit, the request is walked by
its descriptors (every string field at any depth: attribute keys and values with nested
arrays/kvlists, span and event names, status messages, log bodies, resource and scope
attributes), pruning list items whose own bytes do not trigger; the caller re-serializes.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import re2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from collector.redaction_rules import RULES, SENSITIVE_KEY, SENSITIVE_KEY_RULE, SENSITIVE_KEY_TRIGGER, Rule
from store.config import ConfigError, RedactionConfig

_KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"
_ANY_VALUE = "opentelemetry.proto.common.v1.AnyValue"


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    pattern: re.Pattern[str]
    trigger: Any  # re2: linear time, and fast on many alternatives (the stdlib's re is ~50x slower here)
    context: re.Pattern[str] | None


def rule_names() -> list[str]:
    return list(dict.fromkeys([rule.name for rule in RULES] + [SENSITIVE_KEY_RULE]))


class Redactor:
    def __init__(self, config: RedactionConfig) -> None:
        unknown = set(config.disabled_rules) - set(rule_names())
        if unknown:
            raise ConfigError(
                f"redaction.disabled_rules: unknown rule(s) {', '.join(sorted(unknown))}; "
                f"rules are {', '.join(rule_names())}"
            )
        rules = [rule for rule in RULES if rule.name not in config.disabled_rules]
        rules += [_custom(text) for text in config.custom_rules]
        self._rules = [
            _Compiled(
                rule,
                re.compile(rule.pattern, re.ASCII | rule.flags),
                re2.compile(rule.trigger.encode()),
                re.compile(rule.context, re.ASCII) if rule.context else None,
            )
            for rule in rules
        ]
        self._keys = None if SENSITIVE_KEY_RULE in config.disabled_rules else re.compile(SENSITIVE_KEY, re.ASCII)
        triggers = [rule.trigger for rule in rules] + ([SENSITIVE_KEY_TRIGGER] if self._keys else [])
        self._trigger = re2.compile("|".join(f"(?:{t})" for t in triggers).encode()) if triggers else None

    @property
    def names(self) -> list[str]:
        """The rules in force, for /metrics (each gets a counter from the start, hits or not)."""
        return list(dict.fromkeys([c.rule.name for c in self._rules] + ([SENSITIVE_KEY_RULE] if self._keys else [])))

    def may_match(self, data: bytes) -> bool:
        """The cheap pre-check: False means no rule can match anywhere in `data`."""
        return self._trigger is not None and self._trigger.search(data) is not None

    def redact_request(self, request: Message, payload: bytes) -> Counter[str]:
        """Redact `request` (parsed from `payload`) in place; returns hits per rule (empty: unchanged)."""
        hits: Counter[str] = Counter()
        if self._trigger is None:
            return hits
        spans = [match.span() for match in self._trigger.finditer(payload)]
        if spans:
            try:
                self._walk_hits(request, payload, 0, len(payload), _Ranges(spans), hits)
            except (IndexError, ValueError):  # wire layout not as expected (it always is): visit everything
                self._walk(request, hits)
        return hits

    def redact_text(self, text: str, hits: Counter[str]) -> str:
        data = text.encode("utf-8", "surrogatepass")
        if self._trigger is None or not self._trigger.search(data):
            return text
        for compiled in self._rules:
            if not compiled.trigger.search(data):
                continue
            if compiled.context is not None and not compiled.context.search(text):
                continue
            redacted = compiled.pattern.sub(lambda match, c=compiled: _replace(match, c, hits), text)
            if redacted != text:
                text, data = redacted, redacted.encode("utf-8", "surrogatepass")
        return text

    def _walk(self, message: Message, hits: Counter[str]) -> None:
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_STRING:
                if field.is_repeated:
                    for index, text in enumerate(value):
                        value[index] = self.redact_text(text, hits)
                else:
                    redacted = self.redact_text(value, hits)
                    if redacted != value:
                        setattr(message, field.name, redacted)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                if not field.is_repeated:
                    self._walk(value, hits)
                    continue
                for item in value:
                    self._walk(item, hits)
            elif field.name == "bytes_value" and message.DESCRIPTOR.full_name == _ANY_VALUE:
                text = value.decode("utf-8", "replace")
                redacted = self.redact_text(text, hits)
                if redacted != text:
                    message.bytes_value = redacted.encode()
        if self._keys is not None and message.DESCRIPTOR.full_name == _KEY_VALUE:
            self._redact_by_key(message, hits)

    def _walk_hits(
        self, message: Message, data: bytes, pos: int, end: int, ranges: _Ranges, hits: Counter[str]
    ) -> None:
        """Visit only the fields of `message` whose bytes (data[pos:end]) overlap a trigger match.

        Reads the wire format for its field boundaries alone (the values come from the parsed
        message), so a 512-span request with one secret costs one walk of one span, not 512.
        """
        fields = message.DESCRIPTOR.fields_by_number
        seen: Counter[int] = Counter()
        while pos < end:
            tag, pos = _varint(data, pos)
            number, wire = tag >> 3, tag & 7
            if wire != 2:
                pos = _skip(data, pos, wire)
                continue
            size, pos = _varint(data, pos)
            start, pos = pos, pos + size
            index = seen[number]
            seen[number] += 1
            field = fields.get(number)
            if field is None or not ranges.overlap(start, pos):
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                child = getattr(message, field.name)[index] if field.is_repeated else getattr(message, field.name)
                if size <= _SMALL or (not field.is_repeated and index):  # small, or merged from two parts
                    self._walk(child, hits)
                else:
                    self._walk_hits(child, data, start, pos, ranges, hits)
            elif field.type == FieldDescriptor.TYPE_STRING:
                if field.is_repeated:
                    values = getattr(message, field.name)
                    values[index] = self.redact_text(values[index], hits)
                else:
                    text = getattr(message, field.name)
                    redacted = self.redact_text(text, hits)
                    if redacted != text:
                        setattr(message, field.name, redacted)
            elif field.name == "bytes_value" and message.DESCRIPTOR.full_name == _ANY_VALUE:
                self._walk(message, hits)
        if pos != end:
            raise ValueError("field runs past its message")
        if self._keys is not None and message.DESCRIPTOR.full_name == _KEY_VALUE:
            self._redact_by_key(message, hits)

    def _redact_by_key(self, pair: Message, hits: Counter[str]) -> None:
        """`db.password = "hunter2"`: the key says it is a secret, whatever the value looks like.

        Strings and lists of strings (`http.request.header.authorization` is a list in semconv).
        """
        if not self._keys.search(pair.key):
            return
        marker = f"[REDACTED:{SENSITIVE_KEY_RULE}]"
        kind = pair.value.WhichOneof("value")
        values = pair.value.array_value.values if kind == "array_value" else [pair.value]
        for value in values:
            if value.WhichOneof("value") in ("string_value", "bytes_value"):
                current = value.string_value or value.bytes_value.decode("utf-8", "replace")
                if current and current != marker:
                    value.string_value = marker
                    hits[SENSITIVE_KEY_RULE] += 1


_SMALL = 512  # bytes: below this a message is walked whole, cheaper than reading its wire format


class _Ranges:
    """Sorted, non-overlapping (start, end) byte ranges of trigger matches."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]

    def overlap(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self.ends, start)
        return index < len(self.starts) and self.starts[index] < end


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _skip(data: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise ValueError(f"unexpected wire type {wire}")  # groups: OTLP has none


def _replace(match: re.Match[str], compiled: _Compiled, hits: Counter[str]) -> str:
    rule = compiled.rule
    secret = match.group(rule.group)
    if secret is None or (rule.check is not None and not rule.check(secret)):
        return match.group(0)
    hits[rule.name] += 1
    marker = f"[REDACTED:{rule.name}]"
    if rule.group == 0:
        return marker
    start, end = match.span(rule.group)
    offset = match.start()
    whole = match.group(0)
    return whole[: start - offset] + marker + whole[end - offset :]


def _custom(text: str) -> Rule:
    name, sep, pattern = text.partition("=")
    if not sep or not name.strip() or not pattern:
        raise ConfigError(f'redaction.custom_rules entry {text!r} must be "name=regex"')
    try:
        re.compile(pattern)
        re2.compile(pattern.encode())
    except (re.error, re2.error, UnicodeEncodeError) as exc:
        raise ConfigError(f"redaction.custom_rules {name.strip()}: invalid regex: {exc}") from None
    # The pattern is its own trigger (in RE2 syntax, so no lookarounds or backreferences): write it
    # without \b, ^ or $, which binary neighbours in the raw request can defeat (see redaction_rules).
    return Rule(name.strip(), pattern, pattern)
