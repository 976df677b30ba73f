"""Did the output honour the structure the request asked for?

Comes in: an output's text and the call's request parameters (the `llm_calls.request_params`
object: `gen_ai.request.*` / `gen_ai.openai.request.*` with the prefix stripped, or OpenInference's
invocation parameters), optionally the `gen_ai.output.type` the instrumentation reported. Goes out:
an error message when JSON was asked for and the output does not parse, or does not match the
requested JSON Schema; None when it passes or nothing was asked (`requested_json` says which).
Pure, no I/O, never raises.

What counts as asking for JSON, by convention (see ../shared/otlp-recordings/CONVENTIONS.md):
- OpenAI `response_format`: `json_object`, or `{"type": "json_schema", "json_schema": {"schema": ...}}`;
- OpenLLMetry `structured_output_schema`: a response format as above, or the JSON Schema itself;
- Gemini `response_mime_type: application/json` with `response_schema` / `response_json_schema`;
- `gen_ai.output.type = json` (OTel GenAI semconv), without a schema.
An output that is one ```json fence around the JSON is accepted (apps commonly strip fences);
an empty output (tool calls only, or a provider refusal) has nothing to validate.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_SCHEMA_PARAMS = ("response_format", "structured_output_schema", "response_schema", "response_json_schema")
_JSON_PARAMS = frozenset({*_SCHEMA_PARAMS, "response_mime_type"})  # the parameters that can ask for JSON
_FENCE = re.compile(r"\A\s*```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)\n?```\s*\Z", re.S)
_NO_SCHEMA = object()


def requested_json(request_params: Any, output_type: str | None = None) -> tuple[bool, dict | None]:
    """(was JSON asked for, the JSON Schema asked for or None)."""
    params = _as_dict(request_params) or {}
    asked, schema = (output_type or "").lower() == "json", None
    if params.keys().isdisjoint(_JSON_PARAMS):  # most requests: one C-level check
        return asked, None
    mime = params.get("response_mime_type")
    if isinstance(mime, str) and mime.lower() == "application/json":
        asked = True
    for name in _SCHEMA_PARAMS:
        found = _schema_of(params.get(name))
        if found is not None:
            asked = True
            schema = schema or (None if found is _NO_SCHEMA else found)
    return asked, schema


def validate_output(text: str | None, request_params: Any, *, output_type: str | None = None) -> str | None:
    return validate_requested(text, *requested_json(request_params, output_type))


def validate_requested(text: str | None, asked: bool, schema: dict | None) -> str | None:
    """`validate_output` for what `requested_json` read of the request."""
    if not asked or not isinstance(text, str) or not text.strip():
        return None
    value, error = _parse(text)
    if error is not None or schema is None:
        return error
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None  # the request's own schema is broken; not the output's fault
    if validator.is_valid(value):
        return None
    from jsonschema.exceptions import best_match  # imported on first use: most processes never validate

    mismatch = best_match(validator.iter_errors(value))
    if mismatch is None:
        return None
    where = "/".join(str(p) for p in mismatch.absolute_path) or "(root)"
    return f"output does not match the requested schema at {where}: {mismatch.message}"[:300]


def json_error(text: str | None) -> str | None:
    """Why a non-empty output is not JSON (a whole ```json fence is accepted), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    return _parse(text)[1]


def _parse(text: str) -> tuple[Any, str | None]:
    fenced = _FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text), None
    except ValueError as exc:
        return None, f"output is not valid JSON: {exc}"[:300]


def _schema_of(value: Any) -> Any:
    """A JSON Schema, _NO_SCHEMA (JSON without a schema), or None (not a JSON request)."""
    if isinstance(value, str):
        if value.lower() in ("json_object", "json", "json_schema"):
            return _NO_SCHEMA
        value = _as_dict(value)
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind in ("json_object", "json"):
        return _NO_SCHEMA
    if kind == "json_schema":  # OpenAI: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}
        inner = value.get("json_schema")
        inner = inner if isinstance(inner, dict) else {}
        schema = inner.get("schema", value.get("schema"))
        return schema if isinstance(schema, dict) else _NO_SCHEMA
    if kind == "text":
        return None
    if any(k in value for k in ("properties", "$schema", "items", "anyOf", "oneOf", "$defs")) or kind in (
        "object",
        "array",
    ):
        return value  # the schema itself
    return None


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """A compiled validator per distinct schema: requests of one app reuse a few schemas."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    schema = json.loads(schema_text)
    try:
        cls = validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)
    except SchemaError:
        return None


def _as_dict(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value[:1] == "{":
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None
