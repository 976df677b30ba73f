"""Traces: find LLM calls (filters, full-text search, a seeded random sample for review) and read one
trace: its spans as a waterfall and every LLM call as a conversation with its refusal and output
signature. A reviewer records the task's outcome verdict and sends calls to replay from here.
`?trace=<id>` opens a trace."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.actions import flash, pick_for_replay, record_verdict, show_flash
from dashboards.charts import waterfall
from dashboards.columns import ms_columns, usd_columns
from dashboards.conversation import Turn, parse_messages
from dashboards.data import query
from dashboards.kpis import format_usd, format_value
from dashboards.sidebar import current_filters
from store.replay_picks import DEFAULT_PICK_LIST

_STATUSES = {None: "Any status", "ok": "OK", "error": "Error"}
_HIT_COLUMNS = ["start_time", "service_name", "model", "prompt_version", "input_preview", "output_preview", "status",
                "error_type", "duration_ms", "input_tokens", "output_tokens", "cost_usd"]  # fmt: skip


def _search() -> None:
    st.subheader("Find LLM calls")
    text_column, status_column, sample_column, seed_column = st.columns([4, 1, 1, 1])
    text = text_column.text_input("Search inputs and outputs", key="traces_q", placeholder="refund policy")
    status = status_column.selectbox("Status", list(_STATUSES), format_func=_STATUSES.get, key="traces_status")
    size = sample_column.number_input("Sample N", min_value=1, max_value=500, value=25, key="traces_n")
    seed = seed_column.text_input("Seed", key="traces_seed", help="The same seed gives the same sample; empty: newest")
    hits = query(
        "search_llm_calls",
        current_filters(),
        text=text or None,
        status=status,
        sample_seed=seed or None,
        limit=int(size),
    )
    if hits.empty:
        st.info("No LLM calls match. Widen the time range, clear a filter or change the search.")
        return
    st.caption("Select a row to open its trace below.")
    event = st.dataframe(
        hits,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="traces_hits",
        column_order=_HIT_COLUMNS,  # the ids stay in the rows (a selection opens its trace) but out of sight
        column_config={**ms_columns(hits), **usd_columns(hits, "cost_usd")},
    )
    rows = event.selection.rows if event is not None else []
    chosen = hits["trace_id"].iloc[rows[0]] if rows else None
    if chosen and chosen != st.session_state.get("traces_picked"):
        st.session_state["traces_picked"] = chosen
        st.session_state["trace"] = chosen  # before the trace box exists in this run, so it may be set


def _quality_line(quality: pd.Series | None) -> str | None:
    if quality is None or (pd.isna(quality["refused"]) and pd.isna(quality["output_signature"])):
        return None  # a call stored before vigil recorded these signals
    refusal = f"refused ({quality['refusal_rule']})" if quality["refused"] else "not refused"
    if isinstance(quality["hedging_rule"], str):
        refusal += f" · hedging ({quality['hedging_rule']})"
    signature = f"`{quality['output_signature']}`" if isinstance(quality["output_signature"], str) else "none"
    validation = quality["validation_status"] if isinstance(quality["validation_status"], str) else "not asked"
    return f"{refusal} · {quality['output_format'] or '?'} signature {signature} · validation {validation}"


def _call(call: pd.Series, quality: pd.Series | None, trace_id: str, pick_list: str) -> None:
    tokens = f"{format_value(call['input_tokens'], 'count')} in / {format_value(call['output_tokens'], 'count')} out"
    cost = "unpriced" if pd.isna(call["cost_usd"]) else format_usd(call["cost_usd"])
    prompt = f"{call['prompt_name'] or '?'}@{call['prompt_version'] or '?'}"
    with st.container(border=True):
        st.markdown(
            f"**{call['model'] or '?'}** · {call['operation'] or '?'} · prompt `{prompt}` · {tokens} · {cost} · "
            f"{format_value(call['duration_ms'], 'ms')} · status **{call['status'] or '?'}**"
        )
        line = _quality_line(quality)
        if line:
            st.markdown(line)
        if quality is not None and isinstance(quality["validation_error"], str):
            st.warning(f"validation failed: {quality['validation_error']}")
        if call["status"] == "error":
            st.error(f"{call['error_type'] or 'error'}: {call['status_message'] or ''}")
        for turn in parse_messages(call["input_messages"]):
            with st.chat_message(turn.role):
                for block in turn.blocks:
                    st.markdown(block)
        output = parse_messages(call["output_messages"])
        if not output and isinstance(call["output_text"], str):
            output = [Turn("assistant", (call["output_text"],))]
        for turn in output:
            with st.chat_message(turn.role):
                for block in turn.blocks:
                    st.markdown(block)
        if st.button("Send to replay", key=f"pick_{call['span_id']}", help=f"Add this call to pick list `{pick_list}`"):
            error = pick_for_replay(pick_list, trace_id, call["span_id"])
            if error:
                st.error(f"Not sent to replay: {error}")
            else:
                flash(f"Call {call['span_id']} added to replay pick list `{pick_list}` (see the Replay page).")
                st.rerun()


def _verdict(trace_id: str, current: str) -> None:
    with st.form("traces_verdict", border=True):
        st.markdown(f"**Record an outcome verdict** (now: {current}); the latest verdict decides the task's outcome.")
        outcome_column, comment_column = st.columns([1, 3])
        outcome = outcome_column.radio("Outcome", ["success", "failure"], horizontal=True, key="verdict_outcome")
        comment = comment_column.text_input("Comment", key="verdict_comment", placeholder="why (optional)")
        if st.form_submit_button("Record verdict", key="verdict_submit"):
            error = record_verdict(trace_id, outcome, comment)
            if error:
                st.error(f"Verdict not recorded: {error}")
            else:
                flash(f"Recorded {outcome} for trace {trace_id}.")
                st.rerun()


def _trace(trace_id: str) -> None:
    spans = query("trace_spans", trace_id=trace_id)
    calls = query("trace_llm_calls", trace_id=trace_id)
    if spans.empty and calls.empty:
        st.info(f"No trace `{trace_id}` in the store.")
        return
    task = query("trace_task", trace_id=trace_id)
    quality = query("trace_llm_call_quality", trace_id=trace_id)
    if not task.empty:
        row = task.iloc[0]
        st.markdown(f"**{row['name']}** · {row['service_name']} · started {row['start_time']:%Y-%m-%d %H:%M:%S} UTC")
        columns = st.columns(5)
        columns[0].metric("Outcome", row["outcome"], help=f"decided by {row['outcome_source']}")
        columns[1].metric("Duration", format_value(row["duration_ms"], "ms"))
        columns[2].metric("Cost", format_usd(row["cost_usd"]))
        columns[3].metric("LLM calls", int(row["llm_calls"]))
        columns[4].metric("Tool calls", int(row["tool_calls"]))
        _verdict(trace_id, row["outcome"])
    if not spans.empty:
        st.plotly_chart(waterfall(spans), width="stretch")
    st.subheader(f"LLM calls ({len(calls)})")
    pick_list = st.text_input("Replay pick list", DEFAULT_PICK_LIST, key="traces_pick_list")
    by_span = quality.set_index("span_id")
    for _, call in calls.iterrows():
        signals = by_span.loc[call["span_id"]] if call["span_id"] in by_span.index else None
        _call(call, signals, trace_id, pick_list.strip())


st.title("Traces")
show_flash()
if "trace" not in st.session_state:
    st.session_state["trace"] = st.query_params.get("trace", "")
_search()
st.divider()
trace_id = st.text_input("Trace id", key="trace").strip().lower()
if trace_id:
    st.query_params["trace"] = trace_id
    _trace(trace_id)
else:
    st.query_params.pop("trace", None)
    st.caption("Pick a call above or paste a trace id to see its spans and conversation.")
