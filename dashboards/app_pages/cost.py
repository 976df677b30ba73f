"""Cost: what one successful task costs by model / service / task / prompt version, where failed tasks'
money went, the costliest tasks, what the totals leave out (unpriced calls) and budget overruns."""

from __future__ import annotations

import streamlit as st

from dashboards.charts import cost_by_group, cost_over_time, daily_trend, failed_cost
from dashboards.columns import PERCENT, TRACE_LINK, usd_columns, with_trace_links
from dashboards.data import current_store, query
from dashboards.sidebar import current_filters

_GROUPS = {"model": "Model", "service": "Service", "task": "Task", "prompt_version": "Prompt version"}

st.title("Cost")
filters = current_filters()
if "cost_group" not in st.session_state:
    wanted = st.query_params.get("group", "model")
    st.session_state["cost_group"] = wanted if wanted in _GROUPS else "model"
group = st.selectbox("Group by", list(_GROUPS), format_func=_GROUPS.get, key="cost_group")
st.query_params["group"] = group

by_group = query("cost_per_successful_task", filters, group=group)
if by_group.empty or not by_group["tasks"].sum():
    st.info("No tasks started in this window for these filters. Widen the time range or clear a filter.")
    st.stop()

left, right = st.columns(2)
left.plotly_chart(cost_by_group(by_group, _GROUPS[group].lower()), width="stretch")
daily = query("cost_per_successful_task", filters, group="day")
right.plotly_chart(daily_trend(daily), width="stretch")
st.dataframe(
    by_group,
    hide_index=True,
    width="stretch",
    column_config={
        "group": _GROUPS[group],
        "success_rate": PERCENT,
        **usd_columns(by_group, "total_cost_usd", "failed_cost_usd", "cost_per_task", "cost_per_successful_task"),
    },
)

st.subheader("Where the spend of failed tasks went")
st.plotly_chart(cost_over_time(daily), width="stretch")
breakdown = query("failed_task_cost_breakdown", filters)
if breakdown.empty:
    st.success("No failed tasks in this window.")
else:
    if breakdown["cost_usd"].fillna(0).sum() > 0:
        st.plotly_chart(failed_cost(breakdown), width="stretch")
    st.dataframe(
        breakdown,
        hide_index=True,
        width="stretch",
        column_config={**usd_columns(breakdown, "cost_usd"), "share_of_failed_cost": PERCENT},
    )

st.subheader("Most expensive tasks")
expensive = query("most_expensive_tasks", filters, limit=20)
st.dataframe(
    with_trace_links(expensive),
    hide_index=True,
    width="stretch",
    column_order=["trace", "name", "service_name", "model", "start_time", "outcome", "cost_usd", "llm_calls"]
    + ["unpriced_calls", "duration_ms", "input_tokens", "output_tokens", "budget_usd", "over_budget"],
    column_config={"trace": TRACE_LINK, **usd_columns(expensive, "cost_usd", "budget_usd")},
)

st.subheader("Unpriced calls")
unpriced = query("unpriced_share", filters)
if unpriced.empty:
    st.success("Every LLM call in this window has a price.")
else:
    st.caption(
        "These calls have no price, so the totals above leave them out. Price them in the file named by "
        "`[pricing] overrides_file`, then run `vigil reprice`."
    )
    st.dataframe(
        unpriced,
        hide_index=True,
        width="stretch",
        column_config={"share_of_calls": PERCENT, "share_of_tokens": PERCENT},
    )

st.subheader("Budget overruns")
budgets = current_store().config.budgets
if not (budgets.per_service_usd or budgets.per_task_name_usd):
    st.caption("No budgets set. Add `[budgets] per_service_usd` or `per_task_name_usd` to the config to flag tasks.")
else:
    overruns = query("budget_overruns", filters)
    if overruns.empty:
        st.success("No task went over its budget in this window.")
    else:
        st.dataframe(
            overruns,
            hide_index=True,
            width="stretch",
            column_config=usd_columns(overruns, "cost_usd", "budget_usd", "overrun_usd"),
        )
