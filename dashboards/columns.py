"""Column configs the pages share: a `trace` column of links to the Traces page (`?trace=<id>` opens it there)
and USD amounts with one precision per table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.kpis import usd_decimals

PERCENT = st.column_config.NumberColumn(format="percent")
# Shows the first 8 hex digits, enough to tell the rows apart.
TRACE_LINK = st.column_config.LinkColumn("trace", display_text=r"trace=(\w{8})")


def with_trace_links(rows: pd.DataFrame, id_column: str = "trace_id") -> pd.DataFrame:
    """`rows` with a `trace` column of links built from `id_column` (show it with column_config TRACE_LINK)."""
    return rows.assign(trace="./traces?trace=" + rows[id_column].astype("string"))


def ms_columns(rows: pd.DataFrame) -> dict[str, st.column_config.NumberColumn]:
    """column_config entries for every `*_ms` column of `rows`: milliseconds to a tenth, with the unit."""
    return {name: st.column_config.NumberColumn(name.removesuffix("_ms"), format="%.1f ms") for name in rows
            if str(name).endswith("_ms")}  # fmt: skip


def usd_columns(rows: pd.DataFrame, *columns: str) -> dict[str, st.column_config.NumberColumn]:
    """column_config entries for the USD `columns` of `rows`, all with the decimals their smallest amount needs."""
    present = [c for c in columns if c in rows]
    column = st.column_config.NumberColumn(format=f"$%.{usd_decimals(rows[present]) if present else 4}f")
    return dict.fromkeys(columns, column)
