"""Replay: runs with their verdicts, the original and replayed answers side by side, a form to start a
new run (from a new seeded sample of the sidebar's slice, the calls picked on the Traces page, or a saved
replay set), and the pick lists."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards.charts import replay_runs
from dashboards.columns import PERCENT, TRACE_LINK, usd_columns, with_trace_links
from dashboards.data import clear_cache, current_store, query, replay_picks
from dashboards.replay_launch import ReplayRequest, Sample, start_replay
from dashboards.sidebar import current_filters

_VERDICTS = {"pass": "✅ pass", "regress": "❌ regress", "incomplete": "⏳ incomplete"}
# "kind:name" → what the form shows
_SOURCE_LABELS = {"sample": "a new sample of the calls in the sidebar's window and slice", "picks": "pick list ",
                  "set": "replay set "}  # fmt: skip


def _source_label(source: str) -> str:
    kind, name = source.split(":", 1)
    return _SOURCE_LABELS[kind] + name


def _runs() -> pd.DataFrame:
    st.subheader("Runs")
    runs = query("replay_runs")
    if runs.empty:
        st.info("No replay runs yet. Start one below, or with `vigil replay sample` then `vigil replay run`.")
        return runs
    st.plotly_chart(replay_runs(runs), width="stretch")
    st.dataframe(
        runs.assign(verdict=runs["verdict"].map(lambda v: _VERDICTS.get(v, v))),
        hide_index=True,
        width="stretch",
        column_order=["run_id", "verdict", "status", "created_at", "set_id", "prompt_name", "prompt_version"]
        + ["model", "cases_total", "cases_ok", "cases_error", "cases_skipped", "refusal_rate_old"]
        + ["refusal_rate_new", "structure_match_rate", "cost_change", "similarity_mean", "spent_usd", "message"],
        column_config={
            "refusal_rate_old": PERCENT,
            "refusal_rate_new": PERCENT,
            "structure_match_rate": PERCENT,
            "cost_change": PERCENT,
            **usd_columns(runs, "spent_usd"),
        },
    )
    return runs


def _pairs(runs: pd.DataFrame) -> None:
    ids = list(runs["run_id"])
    wanted = st.query_params.get("run")
    if "replay_run" not in st.session_state:
        st.session_state["replay_run"] = wanted if wanted in ids else ids[0]
    run_id = st.selectbox("Compare the answers of run", ids, key="replay_run")
    st.query_params["run"] = run_id
    pairs = query("replay_run_results", run_id=run_id)
    if pairs.empty:
        st.caption("This run has no finished calls yet.")
        return
    st.caption("Biggest changes first: structure changed, refusal gained or lost, then the least similar answers.")
    for _, pair in pairs.head(20).iterrows():
        with st.container(border=True):
            st.markdown(_pair_line(pair))
            if pair["status"] != "ok":
                st.error(f"{pair['error_type'] or 'error'}: {pair['error'] or ''}")
            old, new = st.columns(2)
            old.markdown(f"**Original** · `{pair['old_prompt_version'] or '?'}` · `{pair['old_signature'] or '?'}`")
            old.text(pair["old_output"] or "")
            new.markdown(f"**Replayed** · `{pair['new_prompt_version'] or '?'}` · `{pair['new_signature'] or '?'}`")
            new.text(pair["new_output"] or "")
    with st.expander("All pairs as a table"):
        st.dataframe(pairs, hide_index=True, width="stretch")


def _pair_line(pair: pd.Series) -> str:
    marks = ["structure kept" if pair["signature_kept"] else "**structure changed**"]
    if pair["refusal_gained"]:
        marks.append(f"**refusal gained** ({pair['new_refusal_rule']})")
    if pair["refusal_lost"]:
        marks.append(f"refusal lost ({pair['old_refusal_rule']})")
    if pd.notna(pair["similarity"]):
        marks.append(f"similarity {pair['similarity']:.2f}")
    if pd.notna(pair["cost_delta_usd"]):
        marks.append(f"cost {pair['cost_delta_usd']:+.5f} USD")
    link = f"[trace](./traces?trace={pair['trace_id']})"
    return f"#{int(pair['position'])} · {pair['model'] or '?'} · " + " · ".join(marks) + f" · {link}"


def _start(picks: dict[str, list[dict[str, str]]]) -> None:
    st.subheader("Start a replay")
    sets = query("replay_sets")
    sources = ["sample:"] + [f"picks:{name}" for name in picks] + [f"set:{set_id}" for set_id in sets["set_id"]]
    with st.form("replay_start"):
        source = st.selectbox(
            "Calls",
            sources,
            format_func=_source_label,
            key="replay_source",
            help="A new sample takes the sidebar's time range, service, model and prompt version (not its environment)",
        )
        size_column, seed_column = st.columns(2)
        size = size_column.number_input("Sample size", 1, 5000, 50, key="replay_size", help="for a new sample")
        seed = seed_column.number_input("Seed", 0, value=0, key="replay_seed", help="the same seed, the same sample")
        left, right = st.columns(2)
        version = left.text_input(
            "Candidate prompt version", key="replay_version", help="Empty: the calls as they were"
        )
        model = right.text_input("Model", key="replay_model", help="Empty: each call's own model")
        base_url = left.text_input("Base URL", key="replay_base_url", placeholder="empty: OpenAI's API")
        key_env = right.text_input(
            "API key variable", "OPENAI_API_KEY", key="replay_key_env", help="read from the dashboards' environment"
        )
        budget = left.number_input("Budget (USD)", min_value=0.0, value=current_store().config.replay.budget_usd)
        if not st.form_submit_button("Start replay", key="replay_submit"):
            return
    kind, name = source.split(":", 1)
    request = ReplayRequest(
        picks=tuple((p["trace_id"], p["span_id"]) for p in picks.get(name, [])) if kind == "picks" else (),
        set_id=name if kind == "set" else None,
        sample=Sample(int(size), int(seed), current_filters()) if kind == "sample" else None,
        prompt_version=version.strip() or None,
        model=model.strip() or None,
        base_url=base_url.strip() or None,
        api_key_env=key_env.strip() or "OPENAI_API_KEY",
        budget_usd=budget,
    )
    run_id, log = start_replay(Path(current_store().root), request)
    clear_cache()
    st.success(f"Replay `{run_id}` started; it shows above as it runs (reload). Its log: `{log}`.")


def _picks(picks: dict[str, list[dict[str, str]]]) -> None:
    st.subheader("Calls picked for replay")
    if not picks:
        st.caption("None yet: open a trace on the Traces page and press **Send to replay** on an LLM call.")
        return
    for name, rows in picks.items():
        with st.expander(f"`{name}`: {len(rows)} calls", expanded=len(picks) == 1):
            table = pd.DataFrame(rows)
            st.dataframe(
                with_trace_links(table),
                hide_index=True,
                width="stretch",
                column_order=["trace", "span_id", "picked_at", "source"],
                column_config={"trace": TRACE_LINK},
            )


st.title("Replay")
runs = _runs()
if not runs.empty:
    _pairs(runs)
picks = replay_picks()
_start(picks)
_picks(picks)
