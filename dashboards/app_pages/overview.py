"""Overview: the headline numbers for the chosen window, each against the window before, and a daily trend."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboards.charts import daily_trend
from dashboards.data import query
from dashboards.filters import Filters, previous
from dashboards.kpis import WindowFrames, build_kpis
from dashboards.sidebar import current_filters


def _frames(filters: Filters) -> WindowFrames:
    return WindowFrames(
        cost=query("cost_per_successful_task", filters),
        latency=query("task_latency", filters),
        llm=query("llm_latency_by_model", filters),
        unpriced=query("unpriced_share", filters),
    )


st.title("Overview")
filters = current_filters()
now = _frames(filters)
if now.cost.empty or not now.cost["tasks"].sum():
    st.info("No tasks started in this window for these filters. Widen the time range or clear a filter.")
    st.stop()

earlier = previous(filters, datetime.now(UTC))
tiles = build_kpis(now, _frames(earlier) if earlier else None)
for row in (tiles[:4], tiles[4:]):
    for column, kpi in zip(st.columns(len(row)), row, strict=True):
        column.metric(kpi.label, kpi.value, kpi.delta, delta_color=kpi.delta_color, help=kpi.help, border=True)
if earlier is None:
    st.caption("All time: no earlier window to compare with.")
else:
    st.caption("Changes compare with the window of equal length just before this one.")

daily = query("cost_per_successful_task", filters, group="day")
st.plotly_chart(daily_trend(daily), width="stretch")
