"""Overview tiles: the overview_tiles query's rows (per period, and per bucket of the current one) → labelled,
formatted values with deltas and trends.

Pure: rows in, `Kpi` values out, no Streamlit. Each tile compares the current window with the one of equal length
before it (a delta is None when there is nothing to compare with) and carries its values per bucket as its trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

DeltaColor = Literal["normal", "inverse", "off"]


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None
    delta_color: DeltaColor
    help: str
    trend: list[float] = field(default_factory=list)  # per bucket, oldest first; buckets without a value left out

    @property
    def delta_arrow(self) -> Literal["auto", "off"]:
        """No arrow (and no colour) for a change that rounds to nothing: "0.0 pp" is neither a rise nor a fall."""
        return "off" if self.delta is not None and not self.delta.strip("0.%p ") else "auto"


def kpi_values(row: dict[str, Any] | None, with_quality: bool) -> dict[str, float | None]:
    """One period's row of overview_tiles → tile key → value (None: nothing to show). The refusal and
    validation tiles only `with_quality` (the store records refusals)."""
    row = row or {}
    values = {key: _number(row.get(key)) for key in _TILES}
    values["tasks"] = values["tasks"] or 0
    if not with_quality:
        del values["refusal_rate"], values["validation_failure_rate"]
    return values


def period_rows(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """overview_tiles' whole-period rows by period (current | previous); a period without tasks or calls has none."""
    return {row["period"]: row for row in frame[frame["bucket"].isna()].to_dict("records")}


def trend_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """overview_tiles' rows of the current period's buckets, oldest first."""
    return frame[(frame["period"] == "current") & frame["bucket"].notna()].sort_values("bucket")


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


def build_kpis(
    current: dict[str, float | None], earlier: dict[str, float | None] | None, trend: pd.DataFrame | None = None
) -> list[Kpi]:
    """Tiles of the `current` values (kpi_values), each with its change against `earlier` (None: no window before)
    and its values in `trend` (trend_rows)."""
    earlier = earlier or {}
    tiles = []
    for key, (label, kind, delta_kind, colour, help_text) in _TILES.items():
        if key not in current:
            continue  # a signal this store does not record
        value, old = current[key], earlier.get(key)
        delta = _delta(value, old, delta_kind)
        points = [float(v) for v in trend[key] if not pd.isna(v)] if trend is not None else []
        tiles.append(Kpi(label, format_value(value, kind), delta, colour, help_text, points))
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
        text = f"{(value - old) * 100:+.1f} pp"
    elif old == 0:
        return None
    else:
        text = f"{(value - old) / abs(old):+.0%}"
    return text.lstrip("+-") if not text.strip("+-0.%p ") else text  # "0.0 pp", not "-0.0 pp"


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)
