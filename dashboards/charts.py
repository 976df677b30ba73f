"""Plotly figures for the dashboards: pure functions from a query's DataFrame to a Figure.

No Streamlit and no data access here: each function takes the rows a named query returned
(its columns are listed in the query's first line) and only draws them.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend": {"orientation": "h", "y": -0.2}}
_STATUS_COLOURS = {"error": "#d62728", "ok": "#2ca02c", "unset": "#1f77b4"}


def _bar_height(bars: int) -> int:
    """Few horizontal bars stay slim instead of filling Plotly's default 450 px."""
    return min(450, 180 + 60 * bars)


def daily_trend(daily: pd.DataFrame, bucket: str = "day") -> go.Figure:
    """Rows per day (or hour) with tasks and cost_per_successful_task (cost_per_successful_task by day, or
    overview_tiles' buckets) → tasks (bars) and cost per successful task (line, right axis)."""
    rows = daily.sort_values("group")
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_bar(x=rows["group"], y=rows["tasks"], name="Tasks", marker_color="#9ecae1")
    figure.add_scatter(
        x=rows["group"],
        y=rows["cost_per_successful_task"],
        name="Cost per successful task (USD)",
        mode="lines+markers",
        line={"color": "#d62728"},
        secondary_y=True,
    )
    figure.update_xaxes(type="category")  # one bar per day label, not a bar spanning midnight
    figure.update_yaxes(title_text="tasks", secondary_y=False)
    figure.update_yaxes(title_text="USD", secondary_y=True, rangemode="tozero")
    return figure.update_layout(title=f"Tasks and cost per successful task, by {bucket}", **_LAYOUT)


def cost_by_group(rows: pd.DataFrame, group: str) -> go.Figure:
    """cost_per_successful_task per group → bars, with success rate in the hover."""
    data = rows.assign(group=rows["group"].fillna("(none)")).sort_values("cost_per_successful_task")
    figure = px.bar(
        data,
        x="cost_per_successful_task",
        y="group",
        orientation="h",
        hover_data=["tasks", "successful_tasks", "success_rate", "total_cost_usd"],
        labels={"cost_per_successful_task": "USD per successful task", "group": group},
        title=f"Cost per successful task by {group}",
    )
    return figure.update_layout(**_LAYOUT)


def cost_over_time(daily: pd.DataFrame) -> go.Figure:
    """cost_per_successful_task by day → total and failed spend as stacked areas."""
    data = daily.sort_values("group").assign(succeeded_or_unknown=lambda d: d["total_cost_usd"] - d["failed_cost_usd"])
    figure = go.Figure()
    figure.add_bar(x=data["group"], y=data["failed_cost_usd"], name="spent on failed tasks", marker_color="#d62728")
    figure.add_bar(x=data["group"], y=data["succeeded_or_unknown"], name="other tasks", marker_color="#9ecae1")
    figure.update_xaxes(type="category")  # as daily_trend: a day is a label, not a span of hours
    return figure.update_layout(barmode="stack", title="Spend by day (USD)", **_LAYOUT)


def failed_cost(breakdown: pd.DataFrame) -> go.Figure:
    """failed_task_cost_breakdown → where the money spent on failed tasks went (service / task / model)."""
    data = breakdown.dropna(subset=["cost_usd"]).fillna({"service_name": "?", "task_name": "?", "model": "?"})
    data = data[data["cost_usd"] > 0]
    figure = px.treemap(
        data,
        path=[px.Constant("failed tasks"), "service_name", "task_name", "model"],
        values="cost_usd",
        title="Spend of failed tasks",
    )
    return figure.update_layout(**_LAYOUT)


def waterfall(spans: pd.DataFrame) -> go.Figure:
    """trace_spans → one bar per span from its start offset, indented by depth, errors in red."""
    data = spans.reset_index(drop=True)
    pairs = enumerate(zip(data["depth"], data["name"], strict=True))
    labels = [f"{'  ' * int(depth)}{name} [{i}]" for i, (depth, name) in pairs]
    colours = [
        _STATUS_COLOURS["error"] if status == "error" else "#ff7f0e" if kind == "llm" else "#1f77b4"
        for status, kind in zip(data["status_code"], data["genai_kind"], strict=True)
    ]
    figure = go.Figure(
        go.Bar(
            x=data["duration_ms"].fillna(0).clip(lower=0.5),
            base=data["offset_ms"],
            y=labels,
            orientation="h",
            marker_color=colours,
            customdata=data[["service_name", "status_code", "duration_ms"]],
            hovertemplate="%{y}<br>start +%{base:.0f} ms<br>%{customdata[2]:.1f} ms<br>"
            "%{customdata[0]} · %{customdata[1]}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed", tickfont={"family": "monospace"})
    figure.update_xaxes(title_text="ms since trace start")
    height = 120 + 28 * len(data)
    return figure.update_layout(title="Spans", height=height, showlegend=False, **_LAYOUT)


def latency_percentiles(by_model: pd.DataFrame) -> go.Figure:
    """llm_latency_by_model → p50 / p90 / p99 bars per model and operation."""
    return _percentile_bars(by_model, "p{}_ms", "ms", "LLM call latency")


def errors_by_type(errors: pd.DataFrame) -> go.Figure:
    """llm_errors_by_type → error count per error type, stacked by model."""
    figure = px.bar(
        errors,
        x="errors",
        y="error_type",
        color="model",
        orientation="h",
        labels={"errors": "failed calls", "error_type": "error type"},
        title="LLM errors by type",
    )
    return figure.update_layout(height=_bar_height(errors["error_type"].nunique()), **_LAYOUT)


def rate_by_day(daily: pd.DataFrame, rate: str, calls: str, title: str) -> go.Figure:
    """quality_by_day → one line per model · prompt version: `rate` by day, with its counts in the hover."""
    data = daily[daily[calls] > 0].assign(series=lambda d: d["model"] + " · " + d["prompt_version"])
    figure = px.line(
        data.sort_values("day"),
        x="day",
        y=rate,
        color="series",
        markers=True,
        hover_data=[calls],
        labels={rate: "rate", "day": "day", "series": "model · prompt version"},
        title=title,
    )
    figure.update_xaxes(type="category")
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return figure.update_layout(**_LAYOUT)


def time_to_first_token(streams: pd.DataFrame) -> go.Figure:
    """llm_time_to_first_token → p50 / p90 / p99 time to first token per model and operation."""
    figure = _percentile_bars(streams, "ttft_p{}_ms", "ms to first token", "Time to first token (streamed calls)")
    return figure.update_layout(height=_bar_height(len(streams)))


def _percentile_bars(frame: pd.DataFrame, column: str, unit: str, title: str) -> go.Figure:
    """Grouped horizontal bars of p50 / p90 / p99 per model · operation; `column` names them, {} the percentile."""
    names = {column.format(p): f"p{p}" for p in (50, 90, 99)}
    data = frame.assign(call=frame["model"] + " · " + frame["operation"]).rename(columns=names)
    long = data.melt(id_vars=["call"], value_vars=list(names.values()), var_name="percentile")
    figure = px.bar(
        long,
        x="value",
        y="call",
        color="percentile",
        barmode="group",
        orientation="h",
        labels={"value": unit, "call": "model · operation"},
        title=title,
    )
    return figure.update_layout(**_LAYOUT)


def signature_mix(mix: pd.DataFrame) -> go.Figure:
    """signature_mix_over_time → the share of each output signature per time bucket, one panel per group."""
    groups = mix["group"].astype(str).unique()
    # Buckets as labels ("2026-11-24", or "2026-11-24 13:00" for hours): one bucket must not zoom into its hours.
    buckets = pd.to_datetime(mix["bucket_start"], utc=True).dt.strftime("%Y-%m-%d %H:%M").str.removesuffix(" 00:00")
    figure = px.bar(
        mix.assign(group=mix["group"].astype(str), bucket_start=buckets).sort_values("bucket_start"),
        x="bucket_start",
        y="share",
        color="signature",
        facet_row="group" if len(groups) > 1 else None,
        hover_data=["calls"],
        labels={"bucket_start": "", "share": "share of calls"},
        title="Output signature mix over time",
    )
    figure.update_yaxes(tickformat=".0%")
    figure.update_xaxes(type="category")
    height = 300 + 160 * max(len(groups) - 1, 0)
    return figure.update_layout(barmode="stack", height=height, **_LAYOUT)


def drift_distance(drift: pd.DataFrame, threshold: float) -> go.Figure:
    """signature_drift → JS distance per group, coloured by status, with the drift threshold as a line."""
    data = drift.assign(group=drift["group"].astype(str)).sort_values("js_distance")
    figure = px.bar(
        data,
        x="js_distance",
        y="group",
        color="status",
        orientation="h",
        color_discrete_map={"drift": "#d62728", "stable": "#2ca02c", "insufficient_data": "#aaaaaa"},
        hover_data=["baseline_calls", "current_calls", "top_baseline_signature", "top_current_signature"],
        labels={"js_distance": "Jensen-Shannon distance", "group": ""},
        title="Drift against the baseline",
    )
    figure.add_vline(x=threshold, line_dash="dash", line_color="#d62728")
    figure.update_xaxes(range=[0, 1])
    return figure.update_layout(**_LAYOUT)


def replay_runs(runs: pd.DataFrame) -> go.Figure:
    """replay_runs → per run: refusal rate before and after, and the share of answers that kept their structure."""
    names = {"refusal_rate_old": "refusal rate, original", "refusal_rate_new": "refusal rate, replayed"}
    names["structure_match_rate"] = "structure kept"
    data = runs.assign(run=runs["run_id"] + " (" + runs["verdict"] + ")")
    long = data.melt(id_vars=["run"], value_vars=list(names), var_name="measure").dropna(subset=["value"])
    long["measure"] = long["measure"].map(names)
    figure = px.bar(long, x="value", y="run", color="measure", barmode="group", orientation="h", title="Replay runs")
    figure.update_xaxes(tickformat=".0%", range=[0, 1])
    return figure.update_layout(**_LAYOUT)
