"""Quality: did the calls work for the right reason? Refusal rate over time by model and prompt version
with the refused outputs and the rule that flagged each; structure drift (the output signature mix over
time, its distance from a chosen baseline, keys that appeared or vanished); validation failures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.charts import rate_by_day
from dashboards.columns import TRACE_LINK, with_trace_links
from dashboards.data import current_store, filter_options, query, recorded
from dashboards.drift import render_drift
from dashboards.filters import Filters
from dashboards.sidebar import current_filters


def _refusals(filters: Filters, daily: pd.DataFrame) -> None:
    st.subheader("Refusals")
    if not daily["answered_calls"].sum():
        st.info("No answered LLM calls in this window for these filters.")
        return
    st.plotly_chart(
        rate_by_day(daily, "refusal_rate", "answered_calls", "Refusal rate by day, model and prompt version"),
        width="stretch",
    )
    examples = query("refusal_examples", filters, limit=20)
    if examples.empty:
        st.success("No refusals in this window.")
        return
    st.caption("The newest refused calls and the rule that flagged each (open the trace for the whole conversation).")
    st.dataframe(
        with_trace_links(examples),
        hide_index=True,
        width="stretch",
        column_order=["trace", "start_time", "model", "prompt_version", "refusal_rule", "output_preview"],
        column_config={"trace": TRACE_LINK},
    )


def _validation(filters: Filters, daily: pd.DataFrame) -> None:
    st.subheader("Validation failures")
    if not daily["validated_calls"].sum():
        st.caption("No call in this window asked for JSON or a JSON schema, so nothing was validated.")
        return
    st.plotly_chart(
        rate_by_day(daily, "validation_failure_rate", "validated_calls", "Validation-failure rate by day"),
        width="stretch",
    )
    failures = query("validation_failures", filters, limit=20)
    if failures.empty:
        st.success("Every output that was asked for a structure matched it.")
        return
    st.dataframe(
        with_trace_links(failures),
        hide_index=True,
        width="stretch",
        column_order=["trace", "start_time", "model", "prompt_version", "validation_error", "output_preview"],
        column_config={"trace": TRACE_LINK},
    )


st.title("Quality")
filters = current_filters()
if not recorded("llm_calls", "refused"):
    st.info(
        "Quality signals: not available yet. No stored LLM call has been checked for refusals or validated "
        "(`llm_calls.refused`, `validation_status` are empty); calls stored by a collector with refusal "
        "detection are."
    )
else:
    daily = query("quality_by_day", filters)
    if daily.empty:
        st.info("No LLM calls in this window for these filters. Widen the time range or clear a filter.")
        st.stop()
    _refusals(filters, daily)
    _validation(filters, daily)
if recorded("llm_calls", "output_signature"):
    render_drift(filters, filter_options(current_store()).get("prompt_version", []))
else:
    st.subheader("Structure drift")
    st.info(
        "Structure drift: not available yet. No stored LLM call has an output signature "
        "(`llm_calls.output_signature`); calls stored by a collector that records them have one."
    )
