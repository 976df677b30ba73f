"""OTLP/JSON bodies → protobuf messages, and messages → OTLP/JSON for responses.

OTLP/JSON differs from protobuf's canonical JSON mapping in one way that matters: trace and span
ids are hex, where `json_format` expects base64 (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding).
Unknown fields are ignored, as the spec requires of receivers. Pure, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

# Bytes fields that OTLP/JSON writes as hex (spans, links, log records, exemplars).
_HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


def decode_json(body: bytes, message_type: type[Message]) -> Message:
    """Parse an OTLP/JSON request; any problem raises DecodeError (→ INVALID_ARGUMENT / 400)."""
    try:
        document = json.loads(body)
        return json_format.ParseDict(hex_ids_to_base64(document), message_type(), ignore_unknown_fields=True)
    except (ValueError, TypeError, json_format.ParseError, binascii.Error, RecursionError) as exc:
        raise DecodeError(f"invalid OTLP/JSON: {exc}") from None


def encode_json(message: Message) -> bytes:
    return json_format.MessageToJson(message, indent=None).encode()


def hex_ids_to_base64(value: Any) -> Any:
    """A copy of an OTLP/JSON document with hex trace/span ids rewritten as base64."""
    if isinstance(value, dict):
        return {
            key: _base64(item) if key in _HEX_ID_FIELDS and isinstance(item, str) else hex_ids_to_base64(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [hex_ids_to_base64(item) for item in value]
    return value


def _base64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")
