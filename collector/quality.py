"""The quality rules the collector applies at ingest, and what the application said on the span.

`configure(config.quality)` runs once per process (the collector, and each decode worker at start)
so the normalizer and the GenAI-event decoder apply the `[quality]` rules without a config
argument on every decode call. Application-reported validation is read from span attributes:
`vigil.validation.status` (pass | fail; also true/false, ok/error, passed/failed) and
`vigil.validation.error` (a message; on its own it means fail). The unprefixed
`validation.status` / `validation.error` are read too.
"""

from __future__ import annotations

import logging
from typing import Any

from collector.conventions import as_str
from store.config import QualityConfig
from store.quality import quality_columns
from store.quality.refusal import DEFAULT_RULES, Rules, compile_rules

STATUS_KEYS = ("vigil.validation.status", "validation.status")
ERROR_KEYS = ("vigil.validation.error", "validation.error")
_PASS = frozenset({"pass", "passed", "ok", "true", "valid", "success"})
_FAIL = frozenset({"fail", "failed", "error", "false", "invalid", "failure"})
_KEYS = frozenset(STATUS_KEYS + ERROR_KEYS)

logger = logging.getLogger(__name__)
_rules: Rules = DEFAULT_RULES


def configure(quality: QualityConfig | None) -> None:
    global _rules
    if quality is None:
        _rules = DEFAULT_RULES
    else:
        _rules = compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)


def rules() -> Rules:
    return _rules


def assess_call(
    row: dict[str, Any], attrs: dict[str, Any], calls: list, params: dict[str, Any], has_output: bool
) -> dict[str, Any]:
    """The quality columns of a normalized llm_calls row (content, finish reasons, refusal filled).
    A span that recorded no output messages (content sent as log events, or not captured) leaves
    the output's shape NULL, for the llm_calls view to fill from `llm_messages`."""
    try:
        columns = quality_columns(
            row["output_text"],
            tool_calls=calls,
            finish_reasons=row["finish_reasons"],
            provider_refusal=row["refusal"],
            request_params=params,
            output_type=row["output_type"],
            app_validation=read_app_validation(attrs),
            rules=_rules,
        )
    except Exception:  # a bug in a quality check must not cost the call its row
        logger.exception("quality signals failed span_id=%s", row.get("span_id"))
        return {}
    if not has_output:
        columns.update(output_format=None, output_signature=None, output_keys=None, output_length=None)
    return columns


def read_app_validation(attrs: dict[str, Any]) -> tuple[str | None, str | None]:
    """(pass | fail | None, error message) as the application reported it on the span."""
    if attrs.keys().isdisjoint(_KEYS):  # most spans: one C-level check instead of four probes
        return None, None
    status = error = None
    for key in STATUS_KEYS:
        value = attrs.get(key)
        text = str(value).lower() if isinstance(value, bool) else (as_str(value) or "").lower()
        if text in _PASS or text in _FAIL:
            status = "pass" if text in _PASS else "fail"
            break
    for key in ERROR_KEYS:
        error = as_str(attrs.get(key))
        if error:
            break
    if error and status is None:
        status = "fail"
    return status, (error[:500] if error else None)
