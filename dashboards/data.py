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

The connection is shared by every session of the server (st.cache_resource) and cached per set of tables that
have files: a table that had no files when the views were made needs new views, and a new key gets them. Globs
are re-read by every query, so new files in known tables show up as soon as the query cache (30 s) expires;
dashboards.warm keeps the connection's memo of the live dates current meanwhile, while pages are looked at.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from dashboards.filters import Filters
from dashboards.warm import Keeper
from store.alerts import evaluate_alerts
from store.catalog import connect
from store.config import Config
from store.location import TableLocation, stored_tables, table_location
from store.queries import GROUPS, run
from store.replay_picks import list_pick_lists, read_picks
from store.rollups import enable_memo

logger = logging.getLogger(__name__)

_STORE_KEY = "vigil_store"
_PROMPT_LABEL = GROUPS["prompt_version"]
_FILTERED_VIEWS = {
    "tasks": "model",
    "llm_calls": "coalesce(request_model, response_model)",
    "llm_call_dimensions": "model",  # read by the llm_calls_in macro, which resolves names when called
    "llm_call_facts": "model",
    "llm_call_own_facts": "model",  # from llm_call_facts (_SOURCES): the own facts lack the filters' columns
}
_SOURCES = {"llm_call_own_facts": "llm_call_facts"}  # the same rows, in more columns
# DuckDB variable → SQL expression it is compared with (model: per view, above), in Filters' order.
_VARIABLES = {
    "vigil_service": "service_name",
    "vigil_model": None,
    "vigil_prompt_version": _PROMPT_LABEL,
    "vigil_environment": "environment",
}


@dataclass(frozen=True)
class Store:
    root: str
    config: Config
    tables: tuple[str, ...]  # the tables that have Parquet files

    @property
    def is_empty(self) -> bool:
        return not {"spans", "llm_calls"} & set(self.tables)

    @functools.cached_property
    def cache_key(self) -> str:
        """What the caches key a store by: Streamlit hashing the whole Config took ~6 ms on every cached call."""
        return hashlib.sha256(repr((self.root, self.tables, self.config)).encode()).hexdigest()


# For every st.cache_* below that takes a Store.
_HASH_FUNCS = {Store: lambda store: store.cache_key}


def open_store(root: str | Path, config: Config) -> Store:
    """Look at the folder (cheap: one glob per table) and remember it as this session's store."""
    store = store_at(root, config)
    st.session_state[_STORE_KEY] = store
    return store


def store_at(root: str | Path, config: Config) -> Store:
    path = Path(root).resolve()
    location = table_location(config.store)
    return Store(str(path), config, stored_tables(TableLocation(path, location.uri, location.storage_options)))


def warm_up(store: Store) -> None:
    """Open the store's shared connection and build its memo before any session asks (dashboards.serve): the first
    page a visitor opens then costs what every later one does. A session arriving meanwhile waits for it."""
    if not store.is_empty:
        _options(store)


def current_store() -> Store:
    return st.session_state[_STORE_KEY]


def query(
    name: str, filters: Filters | None = None, group: str = "all", *, window: bool = True, **params: Any
) -> pd.DataFrame:
    """Rows of the named query; with `filters`, its slice and (unless `window` is False, for queries that take
    their own windows, like the drift comparisons) its time window. A failure stops the page with st.error."""
    try:
        return _query(current_store(), name, group, filters, tuple(sorted(params.items())), window)
    except Exception as exc:  # shown to the user, who can act on it; the page stops here
        logger.exception("query failed name=%s", name)
        st.error(f"Query `{name}` failed: {exc}")
        st.stop()
        raise  # st.stop raises; this keeps type checkers and readers sure nothing follows


def filter_options(store: Store) -> dict[str, list[str]]:
    """dimension (service | model | prompt_version | environment) → values present, most used first."""
    return _options(store)


@st.cache_data(ttl=300, show_spinner=False, max_entries=4, hash_funcs=_HASH_FUNCS)
def _options(store: Store) -> dict[str, list[str]]:
    # Over all time, on every page: kept 5 minutes (a new service or model shows up in the sidebar that late).
    rows = _query(store, "filter_options", "all", None, ())
    return {dim: list(group["value"]) for dim, group in rows.groupby("dimension", sort=False)}


def clear_cache() -> None:
    """After the dashboards wrote something (a verdict, a pick), the next run must see it."""
    _query.clear()
    _options.clear()
    _recorded.clear()
    _picks.clear()


def replay_picks() -> dict[str, list[dict[str, str]]]:
    """Pick list name → the calls picked for replay on the Traces page (store.replay_picks)."""
    return _picks(current_store())


@st.cache_data(ttl=30, show_spinner=False, max_entries=4, hash_funcs=_HASH_FUNCS)
def _picks(store: Store) -> dict[str, list[dict[str, str]]]:
    root = Path(store.root)
    return {name: read_picks(root, name) for name in list_pick_lists(root)}


def recorded(table: str, column: str) -> bool:
    """Whether any stored row of `table` has a value in `column`: files written before vigil recorded a
    signal (refusals, output signatures) read as NULL there, which must not look like "none happened"."""
    return _recorded(current_store(), table, column)


def firing_alerts() -> pd.DataFrame | None:
    """Every alert rule's result now (store.alerts.evaluate_alerts, as `vigil check`), one row each; None
    (after an st.error) when the rules could not be evaluated."""
    try:
        return _alerts(current_store())
    except Exception as exc:  # shown like a failed query: the page goes on without the section
        logger.exception("alert evaluation failed")
        st.error(f"Evaluating the alert rules failed: {exc}")
        return None


@st.cache_data(ttl=30, show_spinner=False, max_entries=16, hash_funcs=_HASH_FUNCS)
def _recorded(store: Store, table: str, column: str) -> bool:
    con, lock, _ = _connection(store)
    with lock:  # the raw view: no dedupe needed to find one value; names come from code, never from users
        return bool(
            con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM main.{table}_raw WHERE {column} IS NOT NULL LIMIT 1)"
            ).fetchall()[0][0]
        )


@st.cache_data(ttl=30, show_spinner=False, max_entries=4, hash_funcs=_HASH_FUNCS)
def _alerts(store: Store) -> pd.DataFrame:
    con, lock, _ = _connection(store)
    with lock:
        con.execute("SET search_path = 'main'")  # alerts watch everything, not the sidebar's slice
        results = evaluate_alerts(con, store.config)
    return pd.DataFrame([dataclasses.asdict(result) for result in results])


@st.cache_resource(show_spinner=False, max_entries=4, hash_funcs=_HASH_FUNCS)
def _connection(store: Store) -> tuple[duckdb.DuckDBPyConnection, threading.Lock, Keeper]:
    con = connect(store.root, store.config)
    enable_memo(con)  # a page's queries share today's and yesterday's rows, computed once per listing
    database = con.sql("SELECT current_database()").fetchall()[0][0]
    con.execute("CREATE SCHEMA IF NOT EXISTS filtered")
    for view, model in _FILTERED_VIEWS.items():
        tests = []
        for variable, expression in _VARIABLES.items():
            column = expression or model
            tests.append(f"(getvariable('{variable}') IS NULL OR {column} = getvariable('{variable}'))")
        con.execute(
            f'CREATE OR REPLACE VIEW filtered.{view} AS SELECT * FROM "{database}".main.{_SOURCES.get(view, view)} '
            f"WHERE {' AND '.join(tests)}"
        )
    logger.info("connected root=%s tables=%s", store.root, ",".join(store.tables))
    lock = threading.Lock()
    # a Delta store has no memo (rollups are local only): nothing to keep, and every look would list the bucket
    return con, lock, Keeper(con, lock, active=not table_location(store.config.store).is_delta)


@st.cache_data(ttl=30, show_spinner=False, max_entries=1000, hash_funcs=_HASH_FUNCS)
def _query(
    store: Store,
    name: str,
    group: str,
    filters: Filters | None,
    params: tuple[tuple[str, Any], ...],
    windowed: bool = True,
) -> pd.DataFrame:
    con, lock, keeper = _connection(store)
    keeper.touch()
    chosen = (filters.service, filters.model, filters.prompt_version, filters.environment) if filters else ()
    window = {"since": filters.since, "until": filters.until} if filters and windowed else {}
    with lock:
        con.execute("SET search_path = 'filtered,main'")
        for variable, value in itertools.zip_longest(_VARIABLES, chosen):
            con.execute(f"SET VARIABLE {variable} = ?::VARCHAR", [value])
        return run(con, name, group=group, **window, **dict(params)).to_pandas()
