"""The shared sidebar: time range, service, model, prompt version and environment, mirrored in the URL.

A link carries the view: on a session's first run the widgets start from `st.query_params`
(`?range=24h&service=support-bot`), and every run writes the current choices back, leaving out
the defaults, so the address bar can be copied and shared. Pages read the result with
`current_filters()`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboards.filters import DEFAULT_RANGE, RANGES, Filters, window

_FILTERS_KEY = "vigil_filters"
ALL = "(all)"  # a selectbox showing None reads "Choose an option", so "no filter" gets a name
# URL / session key → (label, dimension in filter_options).
_CHOICES = {"service": "Service", "model": "Model", "prompt_version": "Prompt version", "environment": "Environment"}


def render_sidebar(options: dict[str, list[str]]) -> Filters:
    _start_from_url(options)
    with st.sidebar:
        st.selectbox("Time range", list(RANGES), format_func=lambda key: RANGES[key][0], key="range")
        for key, label in _CHOICES.items():
            values = options.get(key, [])
            current = st.session_state.get(key)
            if current != ALL and current not in values:
                values = [current, *values]  # a shared link's value stays visible even with no rows now
            st.selectbox(label, [ALL, *values], key=key)
    _write_url()
    since, until = window(st.session_state["range"], datetime.now(UTC))
    filters = Filters(since, until, *(_chosen(key) for key in _CHOICES))
    st.session_state[_FILTERS_KEY] = filters
    return filters


def current_filters() -> Filters:
    return st.session_state.get(_FILTERS_KEY, Filters())


def _start_from_url(options: dict[str, list[str]]) -> None:
    if "range" not in st.session_state:
        wanted = st.query_params.get("range", DEFAULT_RANGE)
        st.session_state["range"] = wanted if wanted in RANGES else DEFAULT_RANGE
    for key in _CHOICES:
        if key not in st.session_state:
            st.session_state[key] = st.query_params.get(key) or ALL


def _write_url() -> None:
    choices = {"range": st.session_state["range"]} | {key: _chosen(key) for key in _CHOICES}
    for key, value in choices.items():
        if value is None or (key == "range" and value == DEFAULT_RANGE):
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


def _chosen(key: str) -> str | None:
    value = st.session_state[key]
    return None if value == ALL else value
