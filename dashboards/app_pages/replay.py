"""Replay: runs with their verdicts, old and new outputs side by side, a form to start a new run, and
the calls reviewers picked for replay on the Traces page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.data import has_query, replay_picks

REPLAY_QUERIES = ("replay_runs", "replay_run_results")


def _picks() -> None:
    st.subheader("Calls picked for replay")
    lists = replay_picks()
    if not lists:
        st.caption("None yet: open a trace on the Traces page and press **Send to replay** on an LLM call.")
        return
    for name, picks in lists.items():
        with st.expander(f"`{name}`: {len(picks)} calls", expanded=len(lists) == 1):
            rows = pd.DataFrame(picks).assign(trace="./traces?trace=" + pd.DataFrame(picks)["trace_id"])
            st.dataframe(
                rows,
                hide_index=True,
                width="stretch",
                column_order=["trace", "span_id", "picked_at", "source"],
                column_config={"trace": st.column_config.LinkColumn("trace", display_text=r"trace=(\w{8})")},
            )


st.title("Replay")
if not all(has_query(name) for name in REPLAY_QUERIES):
    st.info(
        "Replay runs: not available yet. This vigil cannot re-run calls against a new prompt version "
        "(no `replay_runs` / `replay_run_results` queries). Picks made on the Traces page are kept below "
        "for when it can."
    )
_picks()
