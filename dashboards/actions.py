"""What a reviewer can do from the dashboards besides reading: record a task's outcome verdict and
pick an LLM call for replay. Both go through store/ (`store.outcomes.record_verdicts`, the same path
as `vigil outcome`; `store.replay_picks.add_pick`), are durable when they return, and clear the
query cache so the next run shows the change. Errors come back as messages, never as exceptions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from dashboards.data import clear_cache, current_store
from store.outcomes import VerdictError, record_verdicts, verdict_row
from store.replay_picks import PickError, add_pick

logger = logging.getLogger(__name__)
VERDICT_SOURCE = "dashboards"


def record_verdict(trace_id: str, outcome: str, comment: str | None) -> str | None:
    """None when stored, else what went wrong."""
    try:
        row = verdict_row(trace_id, outcome, comment=comment or None, source=VERDICT_SOURCE)
        store = current_store()
        record_verdicts(store.config.store, [row])
    except (VerdictError, OSError) as exc:
        logger.warning("verdict not recorded trace=%s error=%s", trace_id, exc)
        return str(exc)
    logger.info("verdict recorded trace=%s outcome=%s", trace_id, outcome)
    clear_cache()
    return None


def pick_for_replay(pick_list: str, trace_id: str, span_id: str) -> str | None:
    """None when stored, else what went wrong."""
    try:
        add_pick(Path(current_store().root), pick_list, trace_id, span_id, source=VERDICT_SOURCE)
    except (PickError, OSError) as exc:
        return str(exc)
    clear_cache()
    return None


def flash(message: str) -> None:
    """A message for the next run: the action ends its own run with st.rerun to show fresh data."""
    st.session_state["vigil_flash"] = message


def show_flash() -> None:
    message = st.session_state.pop("vigil_flash", None)
    if message:
        st.success(message)
