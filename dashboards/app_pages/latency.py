"""Latency & errors: LLM call percentiles by model and operation, time to first token of streamed calls,
task latency by service, errors by type."""

from __future__ import annotations

import streamlit as st

from dashboards.charts import errors_by_type, latency_percentiles, time_to_first_token
from dashboards.columns import TRACE_LINK, ms_columns, with_trace_links
from dashboards.data import query
from dashboards.sidebar import current_filters

st.title("Latency & errors")
filters = current_filters()
by_model = query("llm_latency_by_model", filters)
if by_model.empty:
    st.info("No LLM calls in this window for these filters. Widen the time range or clear a filter.")
    st.stop()

st.plotly_chart(latency_percentiles(by_model), width="stretch")
st.dataframe(
    by_model,
    hide_index=True,
    width="stretch",
    column_config={"error_rate": st.column_config.NumberColumn("error rate", format="percent"), **ms_columns(by_model)},
)

st.subheader("Time to first token")
streams = query("llm_time_to_first_token", filters)
if streams.empty:
    st.caption("No streamed calls with a time to first token in this window.")
else:
    st.plotly_chart(time_to_first_token(streams), width="stretch")
    st.dataframe(streams, hide_index=True, width="stretch", column_config=ms_columns(streams))

st.subheader("Task latency by service")
task_latency = query("task_latency", filters, group="service")
st.dataframe(task_latency, hide_index=True, width="stretch", column_config=ms_columns(task_latency))

st.subheader("Errors")
errors = query("llm_errors_by_type", filters)
if errors.empty:
    st.success("No failed LLM calls in this window.")
else:
    st.plotly_chart(errors_by_type(errors), width="stretch")
    st.dataframe(
        with_trace_links(errors, "example_trace_id"),
        hide_index=True,
        width="stretch",
        column_order=["error_type", "model", "service_name", "errors", "share_of_errors", "last_seen", "trace"],
        column_config={
            "share_of_errors": st.column_config.NumberColumn("share", format="percent"),
            "trace": TRACE_LINK,
        },
    )
