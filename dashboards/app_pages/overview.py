"""Overview: the headline numbers for the chosen window, each against the window before, the alerts
that fire now, and a daily trend."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboards.charts import daily_trend
from dashboards.data import firing_alerts, query, recorded
from dashboards.filters import Filters, previous
from dashboards.kpis import build_kpis, kpi_values, period_rows, trend_rows
from dashboards.sidebar import current_filters

HOURLY_UP_TO = timedelta(days=2)
QUALITY_MISSING = (
    "Refusal and validation-failure rates: not available yet. No stored LLM call has been checked for "
    "refusals; calls stored by a collector with refusal detection are."
)


def _tiles(filters: Filters, earlier: Filters | None, bucket: str) -> pd.DataFrame:
    """Both windows in one query: from the start of the window before to the end of this one, split where
    this one starts; and this one per `bucket`, for the trends."""
    if earlier is None:
        return query("overview_tiles", filters, boundary=None, bucket=bucket)
    return query("overview_tiles", replace(filters, since=earlier.since), boundary=filters.since, bucket=bucket)


def _bucket(filters: Filters, now: datetime) -> str:
    """Hours for a window of two days or less (a day or two is no trend), else days."""
    return "hour" if filters.since is not None and (filters.until or now) - filters.since <= HOURLY_UP_TO else "day"


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
moment = datetime.now(UTC)
earlier, bucket = previous(filters, moment), _bucket(filters, moment)
rows = _tiles(filters, earlier, bucket)
periods, trend = period_rows(rows), trend_rows(rows)
now = kpi_values(periods.get("current"), with_quality)
if not now["tasks"]:
    st.info("No tasks started in this window for these filters. Widen the time range or clear a filter.")
    st.stop()

tiles = build_kpis(now, kpi_values(periods.get("previous"), with_quality) if earlier else None, trend)
per_row = (len(tiles) + 1) // 2
for row in (tiles[:per_row], tiles[per_row:]):
    for column, kpi in zip(st.columns(per_row), row, strict=False):
        column.metric(
            kpi.label,
            kpi.value,
            kpi.delta,
            delta_color="off" if kpi.delta_arrow == "off" else kpi.delta_color,
            delta_arrow=kpi.delta_arrow,
            help=kpi.help,
            border=True,
            chart_data=kpi.trend if len(kpi.trend) > 1 else None,  # one point is no trend
            chart_type="bar" if kpi.label == "Tasks" else "line",
        )
if earlier is None:
    st.caption("All time: no earlier window to compare with.")
else:
    st.caption(f"Changes compare with the window of equal length just before this one; trends are per {bucket}.")
if not with_quality:
    st.caption(QUALITY_MISSING)

st.plotly_chart(daily_trend(trend.rename(columns={"bucket": "group"}), bucket), width="stretch")
_alerts()
