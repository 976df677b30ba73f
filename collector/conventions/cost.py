"""A cost the instrumentation itself reported, whichever convention it used.

Comes in: decoded span attributes. Goes out: the call's total cost in USD as a float, or None.
Some SDKs price calls themselves (LiteLLM, Langfuse, pydantic-ai/Logfire, OpenRouter through
OpenInference); their number knows about discounts and tools the price table cannot, so
`store.pricing` lets it win over an estimate. Never raises; negative or non-numeric → None.
"""

from __future__ import annotations

from typing import Any

from collector.conventions import as_float, json_object

# Total-cost attributes, first present wins: semconv-style names (not yet in the spec, but what
# SDKs send), OpenInference, pydantic-ai/Logfire, Langfuse's flattened form.
REPORTED_COST_KEYS = (
    "gen_ai.usage.cost",
    "gen_ai.usage.total_cost",
    "llm.cost.total",
    "operation.cost",
    "langfuse.observation.cost_details.total",
    "langfuse.observation.total_cost",
)
# Langfuse's JSON breakdown: {"input": .., "output": .., "total": ..}; without "total", the sum.
COST_DETAILS_KEY = "langfuse.observation.cost_details"


def read_reported_cost(attrs: dict[str, Any]) -> float | None:
    for key in REPORTED_COST_KEYS:
        value = attrs.get(key)
        if value is not None:
            cost = as_float(value)
            if cost is not None and cost >= 0:
                return cost
    details = json_object(attrs.get(COST_DETAILS_KEY))
    if details:
        total = as_float(details.get("total"))
        if total is None:
            parts = [as_float(v) for v in details.values()]
            total = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
        if total is not None and total >= 0:
            return total
    return None
