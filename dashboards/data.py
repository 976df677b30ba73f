"""The dashboards' only route to data: cached calls of the named queries in store/queries.

In: a `Store` (root folder, config, which tables have files) and a `Filters`. Out: pandas
DataFrames. Every metric is a named `.sql` file run with `store.queries.run`, so a number on a
page means what the CLI and the tests mean by it; pages never write SQL.

Filters reach every query without each `.sql` file growing service/model/prompt parameters:
the connection has a `filtered` schema whose `tasks` and `llm_calls` views keep only the rows
matching DuckDB variables, and each query sets those variables and `search_path = 'filtered,main'`
first. Views in `main` still bind `main` tables, so a task's cost is never cut down to the filtered
calls. Queries hold a lock on the shared connection: the catalog registers in-memory tables for
empty ones, which a cursor (a second connection) cannot see, and variables are per connection.

The connection is cached per set of tables that have files: a table that had no files when the
views were made needs new views, and a new key gets them. Globs are re-read by every query, so
new files in known tables show up as soon as the query cache (30 s) expires.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from dashboards.filters import Filters
from store.catalog import connect
from store.config import Config
from store.queries import GROUPS, run
from store.schema import TABLES
from store.writer import table_dir

logger = logging.getLogger(__name__)

_STORE_KEY = "vigil_store"
_PROMPT_LABEL = GROUPS["prompt_version"]
_FILTERED_VIEWS = {
    "tasks": "model",
    "llm_calls": "coalesce(request_model, response_model)",
}
# DuckDB variable → SQL expression it is compared with (model: per view, above).
_VARIABLES = {"vigil_service": "service_name", "vigil_model": None, "vigil_prompt_version": _PROMPT_LABEL}


@dataclass(frozen=True)
class Store:
    root: str
    config: Config
    tables: tuple[str, ...]  # the tables that have Parquet files

    @property
    def is_empty(self) -> bool:
        return not {"spans", "llm_calls"} & set(self.tables)


def open_store(root: str | Path, config: Config) -> Store:
    """Look at the folder (cheap: one glob per table) and remember it as this session's store."""
    path = Path(root).resolve()
    tables = tuple(t for t in TABLES if any(table_dir(path, t).glob("date=*/*.parquet")))
    store = Store(str(path), config, tables)
    st.session_state[_STORE_KEY] = store
    return store


def current_store() -> Store:
    return st.session_state[_STORE_KEY]


def query(name: str, filters: Filters | None = None, group: str = "all", **params: Any) -> pd.DataFrame:
    """Rows of the named query; with `filters`, its window and slice. A failure stops the page with st.error."""
    try:
        return _query(current_store(), name, group, filters, tuple(sorted(params.items())))
    except Exception as exc:  # shown to the user, who can act on it; the page stops here
        logger.exception("query failed name=%s", name)
        st.error(f"Query `{name}` failed: {exc}")
        st.stop()
        raise  # st.stop raises; this keeps type checkers and readers sure nothing follows


def filter_options(store: Store) -> dict[str, list[str]]:
    """dimension (service | model | prompt_version) → values present, most used first."""
    rows = _query(store, "filter_options", "all", None, ())
    return {dim: list(group["value"]) for dim, group in rows.groupby("dimension", sort=False)}


@st.cache_resource(show_spinner=False, max_entries=4)
def _connection(store: Store) -> tuple[duckdb.DuckDBPyConnection, threading.Lock]:
    con = connect(store.root, store.config)
    database = con.sql("SELECT current_database()").fetchall()[0][0]
    con.execute("CREATE SCHEMA IF NOT EXISTS filtered")
    for view, model in _FILTERED_VIEWS.items():
        tests = []
        for variable, expression in _VARIABLES.items():
            column = expression or model
            tests.append(f"(getvariable('{variable}') IS NULL OR {column} = getvariable('{variable}'))")
        con.execute(
            f'CREATE OR REPLACE VIEW filtered.{view} AS SELECT * FROM "{database}".main.{view} '
            f"WHERE {' AND '.join(tests)}"
        )
    logger.info("connected root=%s tables=%s", store.root, ",".join(store.tables))
    return con, threading.Lock()


@st.cache_data(ttl=30, show_spinner=False, max_entries=1000)
def _query(
    store: Store, name: str, group: str, filters: Filters | None, params: tuple[tuple[str, Any], ...]
) -> pd.DataFrame:
    con, lock = _connection(store)
    chosen = (filters.service, filters.model, filters.prompt_version) if filters else (None, None, None)
    window = {"since": filters.since, "until": filters.until} if filters else {}
    with lock:
        con.execute("SET search_path = 'filtered,main'")
        for variable, value in zip(_VARIABLES, chosen, strict=True):
            con.execute(f"SET VARIABLE {variable} = ?::VARCHAR", [value])
        return run(con, name, group=group, **window, **dict(params)).to_pandas()
