"""Quality signals of one LLM output, as the `llm_calls` columns that store them.

Comes in: an output (text, tool calls, finish reasons, the provider's refusal field), what the
request asked for (request params, output type) and what the application itself reported.
Goes out: `quality_columns(...)`, a dict of the QUALITY_COLUMNS. Pure functions only, so the
collector (at ingest) and replay (on new outputs) compute the same thing:
`refusal.detect_refusal` / `detect_hedging`, `signature.output_signature`,
`validation.validate_output` (`validate_requested`).

`refusal` (the provider's refusal text) and `output_type` (the format the request asked for) are
read by the normalizer; `refused` / `refusal_rule` is the verdict (any layer) and
`output_format` the format that came back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from store.quality.refusal import Rules, detect_hedging, detect_refusal
from store.quality.signature import output_signature
from store.quality.validation import json_error, requested_json, validate_requested

QUALITY_COLUMNS = (
    "refused",
    "refusal_rule",
    "hedging_rule",
    "output_format",
    "output_signature",
    "output_keys",
    "output_length",
    "validation_status",
    "validation_error",
)


def quality_columns(
    text: str | None,
    *,
    tool_calls: Any = None,
    finish_reasons: Iterable[str | None] | None = (),
    provider_refusal: str | None = None,
    request_params: Any = None,
    output_type: str | None = None,
    app_validation: tuple[str | None, str | None] = (None, None),
    rules: Rules | None = None,
) -> dict[str, Any]:
    """`app_validation` is (status pass | fail | None, error) as the application reported it."""
    rule = detect_refusal(text, finish_reasons=finish_reasons, provider_refusal=provider_refusal, rules=rules)
    signature = output_signature(text, tool_calls)
    status, error = _validation(text, request_params, output_type, app_validation)
    return {
        "refused": rule is not None,
        "refusal_rule": rule,
        "hedging_rule": detect_hedging(text, rules=rules) if rule is None else None,
        "output_format": signature.format,
        "output_signature": signature.signature,
        "output_keys": signature.keys or None,
        "output_length": signature.length,
        "validation_status": status,
        "validation_error": error,
    }


def message_quality_columns(
    text: str | None,
    *,
    tool_calls: Any = None,
    finish_reason: str | None = None,
    provider_refusal: str | None = None,
    rules: Rules | None = None,
) -> dict[str, Any]:
    """Quality of one output message that arrived as a GenAI log event (an `llm_messages` row): the
    request is not known here, so validation keeps only `json_error` for the llm_calls view."""
    columns = quality_columns(
        text, tool_calls=tool_calls, finish_reasons=(finish_reason,), provider_refusal=provider_refusal, rules=rules
    )
    columns["json_error"] = json_error(text)
    for name in ("refused", "validation_status", "validation_error"):
        del columns[name]
    return columns


def _validation(
    text: str | None, params: Any, output_type: str | None, app: tuple[str | None, str | None]
) -> tuple[str | None, str | None]:
    """The application's failure wins; then our own check; then the application's pass."""
    app_status, app_error = app
    if app_status == "fail":
        return "fail", f"application reported: {app_error or 'validation failed'}"
    asked, schema = requested_json(params, output_type)
    error = validate_requested(text, asked, schema)
    if error is not None:
        return "fail", error
    if asked and isinstance(text, str) and text.strip():
        return "pass", None
    return app_status, None
