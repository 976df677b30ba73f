"""One replayed case → its `replay_results` row: what was sent, both answers, how they compare.

Pure: builds dicts, no I/O. The old answer is the stored production answer, or the control's
answer when the run's baseline is `replay`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from replay.compare import compare_pair
from replay.providers import Completion, ProviderError
from replay.rebuild import ChatRequest
from store.quality.refusal import Rules


@dataclass
class Outcome:
    completion: Completion | None
    error: ProviderError | None
    attempts: int
    usd: float  # the answer's own cost
    charged_usd: float  # every attempt's
    charged_tokens: int
    latency_ms: float | None


def base_row(
    run_id: str, new_version: str | None, case: dict[str, Any], request: ChatRequest | None, attempts: int
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "trace_id": case["trace_id"],
        "span_id": case["span_id"],
        "position": case["position"],
        "attempts": attempts,
        "request": request.to_json() if request else None,
        "model": request.model if request else None,
        "old_prompt_version": case.get("prompt_version"),
        "new_prompt_version": new_version or case.get("prompt_version"),
        "old_output": case.get("output_text"),
        "old_cost_usd": case.get("cost_usd"),
        "old_latency_ms": case.get("duration_ms"),
    }


def error_row(
    run_id, new_version, case, request, kind: str, message: str, attempts: int, charged_usd: float, charged_tokens: int
) -> dict[str, Any]:
    return base_row(run_id, new_version, case, request, attempts) | {
        "status": "error",
        "error_type": kind,
        "error": message[:2000],
        "charged_usd": charged_usd,
        "charged_tokens": charged_tokens,
    }


def ok_row(
    run_id: str,
    new_version: str | None,
    rules: Rules | None,
    case: dict[str, Any],
    request: ChatRequest,
    outcome: Outcome,
    control: Outcome | None,
) -> dict[str, Any]:
    old = answer_of(control) if control is not None else {
        "text": case.get("output_text"),
        "tool_calls": _loads(case.get("tool_calls")),
        "finish_reasons": case.get("finish_reasons"),
        "refusal": case.get("refusal"),
        "cost_usd": case.get("cost_usd"),
        "latency_ms": case.get("duration_ms"),
    }  # fmt: skip
    completion = outcome.completion
    comparison = compare_pair(old, answer_of(outcome), request.params, rules)
    return base_row(run_id, new_version, case, request, outcome.attempts) | comparison | {
        "status": "ok",
        "old_output": old["text"],
        "old_cost_usd": old["cost_usd"],
        "old_latency_ms": old["latency_ms"],
        "response_model": completion.response_model,
        "new_output": completion.text,
        "new_tool_calls": json.dumps(completion.tool_calls) if completion.tool_calls else None,
        "new_finish_reasons": completion.finish_reasons,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "new_cost_usd": outcome.usd,
        "new_latency_ms": outcome.latency_ms,
    }  # fmt: skip


def answer_of(outcome: Outcome) -> dict[str, Any]:
    completion = outcome.completion
    return {
        "text": completion.text,
        "tool_calls": completion.tool_calls,
        "finish_reasons": completion.finish_reasons,
        "refusal": completion.refusal,
        "cost_usd": outcome.usd,
        "latency_ms": outcome.latency_ms,
    }


def _loads(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
