"""Overview tiles: the named queries' one-row results → labelled, formatted values with deltas.

Pure: DataFrames in, `Kpi` values out, no Streamlit. Each tile compares the current window
with the one of equal length before it; a delta is None when there is nothing to compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

DeltaColor = Literal["normal", "inverse", "off"]


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None
    delta_color: DeltaColor
    help: str


@dataclass(frozen=True)
class WindowFrames:
    """One window's rows of cost_per_successful_task, task_latency, llm_latency_by_model, unpriced_share,
    refusal_rate and validation_failure_rate (the last two None when the store records no refusals)."""

    cost: pd.DataFrame
    latency: pd.DataFrame
    llm: pd.DataFrame
    unpriced: pd.DataFrame
    refusals: pd.DataFrame | None = None
    validation: pd.DataFrame | None = None


def kpi_values(frames: WindowFrames) -> dict[str, float | None]:
    calls = frames.llm["calls"].sum() if len(frames.llm) else 0
    values = {
        "tasks": _first(frames.cost, "tasks") or 0,
        "success_rate": _first(frames.cost, "success_rate"),
        "cost_per_successful_task": _first(frames.cost, "cost_per_successful_task"),
        "total_cost_usd": _first(frames.cost, "total_cost_usd"),
        "p50_ms": _first(frames.latency, "p50_ms"),
        "p99_ms": _first(frames.latency, "p99_ms"),
        "llm_error_rate": frames.llm["errors"].sum() / calls if calls else None,
        "unpriced_share": float(frames.unpriced["share_of_calls"].sum()) if calls else None,
    }
    if frames.refusals is not None:
        values["refusal_rate"] = _first(frames.refusals, "refusal_rate")
    if frames.validation is not None:
        values["validation_failure_rate"] = _first(frames.validation, "failure_rate")
    return values


# key → (label, formatter, delta kind, delta colour, help)
_TILES: dict[str, tuple[str, str, str, DeltaColor, str]] = {
    "tasks": ("Tasks", "count", "relative", "off", "Agent tasks (root spans) that started in the window."),
    "success_rate": ("Success rate", "percent", "points", "normal", "Successes / (successes + failures)."),
    "cost_per_successful_task": (
        "Cost per successful task",
        "usd",
        "relative",
        "inverse",
        "Cost of every task in the window, failed ones included, divided by the successes.",
    ),
    "total_cost_usd": ("Total spend", "usd", "relative", "inverse", "Sum of priced LLM call costs."),
    "p50_ms": ("p50 task latency", "ms", "relative", "inverse", "Median task (root span) duration."),
    "p99_ms": ("p99 task latency", "ms", "relative", "inverse", "99th percentile task duration."),
    "llm_error_rate": ("LLM error rate", "percent", "points", "inverse", "LLM calls with status error."),
    "unpriced_share": (
        "Unpriced calls",
        "percent",
        "points",
        "inverse",
        "Share of LLM calls with no price: cost totals leave them out (see the Cost page).",
    ),
    "refusal_rate": (
        "Refusal rate",
        "percent",
        "points",
        "inverse",
        "Answered LLM calls flagged as refusals (provider signal or a lexical rule; see the Quality page).",
    ),
    "validation_failure_rate": (
        "Validation failures",
        "percent",
        "points",
        "inverse",
        "Calls that asked for JSON / a JSON schema and got an output that does not match it.",
    ),
}


def build_kpis(now: WindowFrames, before: WindowFrames | None) -> list[Kpi]:
    current = kpi_values(now)
    earlier = kpi_values(before) if before is not None else {}
    tiles = []
    for key, (label, kind, delta_kind, colour, help_text) in _TILES.items():
        if key not in current:
            continue  # a signal this store does not record
        value, old = current[key], earlier.get(key)
        tiles.append(Kpi(label, format_value(value, kind), _delta(value, old, delta_kind), colour, help_text))
    return tiles


def format_value(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.2f} s"
    return format_usd(value)


def format_usd(value: float) -> str:
    """Dollars to the cent from $1, else four decimals; under a hundredth of a cent, two significant digits
    (one cheap call costs $0.000024: "$0.0000" would hide it)."""
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if value == 0 or abs(value) >= 0.0001:
        return f"${value:.4f}"
    if abs(value) < 1e-9:
        return "$0"
    return f"${value:.{1 - math.floor(math.log10(abs(value)))}f}"


def usd_decimals(values: pd.Series | pd.DataFrame) -> int:
    """Decimals that show the smallest non-zero amount among `values` with two significant digits (4 at least,
    8 at most), so one table of costs shares one precision and a cheap model's calls do not read $0.0000."""
    amounts = pd.Series(values.to_numpy().ravel(), dtype="float64").abs()
    smallest = amounts[amounts > 0].min()
    if pd.isna(smallest) or smallest >= 0.0001:
        return 4
    return min(8, 1 - math.floor(math.log10(smallest)))


def _delta(value: float | None, old: float | None, kind: str) -> str | None:
    if value is None or old is None or _nan(value) or _nan(old):
        return None
    if kind == "points":
        return f"{(value - old) * 100:+.1f} pp"
    if old == 0:
        return None
    return f"{(value - old) / abs(old):+.0%}"


def _first(frame: pd.DataFrame, column: str) -> float | None:
    if frame.empty or pd.isna(frame[column].iloc[0]):
        return None
    return float(frame[column].iloc[0])


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)
