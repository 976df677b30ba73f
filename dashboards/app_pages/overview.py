"""Overview: the headline numbers for the chosen window, each against the window before, the alerts
that fire now, and a daily trend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboards.charts import daily_trend
from dashboards.data import firing_alerts, query, recorded
from dashboards.filters import Filters, previous
from dashboards.kpis import build_kpis, kpi_values, period_rows
from dashboards.sidebar import current_filters

QUALITY_MISSING = (
    "Refusal and validation-failure rates: not available yet. No stored LLM call has been checked for "
    "refusals; calls stored by a collector with refusal detection are."
)


def _tiles(filters: Filters, earlier: Filters | None) -> pd.DataFrame:
    """Both windows in one query: from the start of the window before to the end of this one, split where
    this one starts."""
    if earlier is None:
        return query("overview_tiles", filters, boundary=None)
    return query("overview_tiles", replace(filters, since=earlier.since), boundary=filters.since)


def _alerts() -> None:
    st.subheader("Alerts firing now")
    results = firing_alerts()
    if results is None:
        return
    if results.empty:
        st.caption("No alert rules are configured. Add `[alerts]` rules to the config; `vigil check` runs them too.")
        return
    firing = results[results["firing"]]
    if firing.empty:
        st.success(f"None of the {len(results)} alert rules fires.")
    else:
        st.error(f"{len(firing)} of {len(results)} alert rules fire.")
        st.dataframe(firing, hide_index=True, width="stretch")
    with st.expander("Every rule's current value"):
        st.dataframe(results, hide_index=True, width="stretch")


st.title("Overview")
filters = current_filters()
with_quality = recorded("llm_calls", "refused")
earlier = previous(filters, datetime.now(UTC))
periods = period_rows(_tiles(filters, earlier))
now = kpi_values(periods.get("current"), with_quality)
if not now["tasks"]:
    st.info("No tasks started in this window for these filters. Widen the time range or clear a filter.")
    st.stop()

tiles = build_kpis(now, kpi_values(periods.get("previous"), with_quality) if earlier else None)
per_row = (len(tiles) + 1) // 2
for row in (tiles[:per_row], tiles[per_row:]):
    for column, kpi in zip(st.columns(per_row), row, strict=False):
        column.metric(kpi.label, kpi.value, kpi.delta, delta_color=kpi.delta_color, help=kpi.help, border=True)
if earlier is None:
    st.caption("All time: no earlier window to compare with.")
else:
    st.caption("Changes compare with the window of equal length just before this one.")
if not with_quality:
    st.caption(QUALITY_MISSING)

daily = query("cost_per_successful_task", filters, group="day")
st.plotly_chart(daily_trend(daily), width="stretch")
_alerts()
