"""A `trace` column of links to the Traces page (`?trace=<id>` opens it there), for any table with trace ids."""

from __future__ import annotations

import pandas as pd
import streamlit as st

# Shows the first 8 hex digits, enough to tell the rows apart.
TRACE_LINK = st.column_config.LinkColumn("trace", display_text=r"trace=(\w{8})")


def with_trace_links(rows: pd.DataFrame, id_column: str = "trace_id") -> pd.DataFrame:
    """`rows` with a `trace` column of links built from `id_column` (show it with column_config TRACE_LINK)."""
    return rows.assign(trace="./traces?trace=" + rows[id_column].astype("string"))
