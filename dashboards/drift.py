"""The Quality page's structure-drift section: how the mix of output signatures moved.

A current side (the sidebar's window and slice) is compared with a baseline the user picks: the
window of equal length just before, or another prompt version over the same window. Numbers come
from the named queries signature_mix_over_time, signature_drift and key_changes (the ones `vigil
drift` and the drift alerts use), with the `[drift]` config's minimum sample size and threshold.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from dashboards.charts import drift_distance, signature_mix
from dashboards.data import current_store, query
from dashboards.filters import Filters, previous

_GROUPS = {"all": "Everything", "model": "Model", "prompt_version": "Prompt version", "service": "Service"}
_BASELINES = {"window": "The window before this one", "prompt": "Another prompt version"}


def render_drift(filters: Filters, prompt_versions: list[str]) -> None:
    st.subheader("Structure drift")
    left, right = st.columns(2)
    group = left.selectbox("Compare per", list(_GROUPS), format_func=_GROUPS.get, key="drift_group")
    baseline = right.radio("Baseline", list(_BASELINES), format_func=_BASELINES.get, key="drift_baseline")
    mix = query("signature_mix_over_time", filters, group=group)
    if mix.empty:
        st.info("No LLM call in this window has an output signature.")
        return
    st.plotly_chart(signature_mix(mix), width="stretch")
    params = _sides(filters, baseline, prompt_versions)
    if params is None:
        return
    config = current_store().config.drift
    sides = replace(filters, prompt_version=None) if baseline == "prompt" else filters
    common = {"min_samples": config.min_samples, "window": False, **params}
    drift = query("signature_drift", sides, group=group, threshold=config.js_threshold, **common)
    if drift.empty:
        st.info("Neither side has calls with an output signature.")
        return
    judged = drift[drift["status"] != "insufficient_data"]
    if judged.empty:
        most = drift[["baseline_calls", "current_calls"]].fillna(0).astype(int).max()
        st.info(
            f"Too few calls to judge drift: each side needs {config.min_samples} calls with an output signature "
            f"(`[drift] min_samples`); groups here have at most {most['baseline_calls']} in the baseline and "
            f"{most['current_calls']} now. Compare a longer window, or another prompt version."
        )
    else:
        st.plotly_chart(drift_distance(judged, config.js_threshold), width="stretch")
    st.caption(
        f"Jensen-Shannon distance of the signature mix (0: same, 1: nothing in common); drift from "
        f"{config.js_threshold:g}; fewer than {config.min_samples} calls on a side is insufficient_data "
        "(`[drift]` in the config)."
    )
    st.dataframe(drift, hide_index=True, width="stretch")
    keys = query("key_changes", sides, group=group, **common)
    st.markdown("**JSON keys that appeared or vanished**")
    if keys.empty:
        st.caption("No JSON key appeared or vanished.")
    else:
        st.dataframe(
            keys,
            hide_index=True,
            width="stretch",
            column_config={"baseline_share": st.column_config.NumberColumn(format="percent")}
            | {"current_share": st.column_config.NumberColumn(format="percent")},
        )


def _sides(filters: Filters, baseline: str, prompt_versions: list[str]) -> dict[str, Any] | None:
    if baseline == "window":
        before = previous(filters, datetime.now(UTC))
        if before is None:
            st.info("All time has no window before it: pick a time range, or compare with another prompt version.")
            return None
        window = {"current_since": filters.since, "current_until": filters.until}
        return window | {"baseline_since": before.since, "baseline_until": before.until}
    if len(prompt_versions) < 2:
        st.info("Only one prompt version has calls: compare with the window before instead.")
        return None
    versions = sorted(prompt_versions, key=_natural)  # the newest version last: it is compared with the one before
    left, right = st.columns(2)
    old = left.selectbox("Baseline prompt version", versions, index=len(versions) - 2, key="drift_old_prompt")
    new = right.selectbox("Current prompt version", versions, index=len(versions) - 1, key="drift_new_prompt")
    window = {"baseline_since": filters.since, "baseline_until": filters.until}
    return (
        window
        | {"current_since": filters.since, "current_until": filters.until}
        | {
            "baseline_prompt": old,
            "current_prompt": new,
        }
    )


def _natural(label: str) -> list[int | str]:
    """'support@v10' after 'support@v9'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]
