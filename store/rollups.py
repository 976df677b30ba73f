"""Rollups: the expensive views' rows, materialized per UTC date, used only while provably current.

The `task_rows` and `llm_call_dimensions` views (store.catalog) dedupe, collapse parent/child LLM
calls, fill prompts from parents and roots, fold in event content and aggregate per task over
every row they read, on every query. A rollup stores their output for one date partition D as
Parquet: `<root>/rollups/tasks/date=D/rollup-<signature>.parquet` (one row per task that started
on D) and `<root>/rollups/llm_calls/date=D/rollup-<signature>.parquet` (one resolved row per LLM
call that started on D), both sorted by trace_id so a lookup by id reads one row group per file.

A date's rows depend only on the partitions D-1, D and D+1 of spans, llm_calls and llm_messages
(a task's calls run within WINDOW_SLACK_AFTER of its start, its root lies within that of its calls:
the assumption the windowed views make already). The signature hashes those files' names, sizes
and modification times with the SQL of the views (so another version of vigil, or a config with
another `task_span_pattern` or outcome `attribute_keys`, never reads a rollup it did not write).
The catalog uses a date's rollup only when a rollup with the signature of the current listing
exists for every kind; every other date (today, yesterday, dates that got late data, were
compacted, repriced or cut by retention since) is computed live from its files. So a rollup
is a cache that cannot change an answer.
A third kind, `llm_call_facts` (FACTS), holds the llm_calls rollup's rows in the columns aggregates read, sorted
for scanning; it is written from that rollup under the same name, so it is valid exactly when the other two are.
Verdicts (outcomes), the success/failure values and budgets are applied on top of the rows
(store.catalog's `tasks`), so a verdict posted at any time counts at once.

The live dates are what most queries still compute. A connection that asks for it (`enable_memo`:
the dashboards) keeps their rows in temporary tables, rebuilt when the listing of their files
changes (and skipped above MEMO_MAX_BYTES of files), so a page's dozen queries compute them once.

Rollups are written by store.rollup_build after compaction; they work on the local file store only.
"""

from __future__ import annotations

import functools
import hashlib
import os
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

ROLLUP_DIR = "rollups"
PREFIX = "rollup-"
# rollup kind → the live view whose rows it holds
KINDS = {"tasks": "task_rows_live", "llm_calls": "llm_call_dimensions_live"}
# The calls' facts: the llm_calls rollup of a date cut to the columns the call-level aggregates read (FACTS; the
# `llm_call_facts` view, and `llm_call_own_facts`: OWN_FACT_COLUMNS), sorted by them rather than by trace_id, so
# equal values lie in runs DuckDB reads as dictionaries: an all-time scan of it costs a third of the full rollup's.
# Written from the date's llm_calls rollup under the same name (signature); a date is rolled up only with all
# three kinds.
FACTS = "llm_call_facts"
FACT_COLUMNS = (
    "model", "operation", "provider", "service_name", "name", "prompt_name", "prompt_version", "status",
    "output_format", "environment", "project", "request_model", "response_model", "error_type", "cost_source",
    "refused", "refusal_rule", "hedging_rule", "validation_status", "date", "start_time", "duration_ms",
    "time_to_first_token_ms", "input_tokens", "output_tokens", "total_tokens", "cost_usd",
)  # fmt: skip
ALL_KINDS = (*KINDS, FACTS)
_FACTS = ", ".join(FACT_COLUMNS)
# llm_call_own_facts: the facts a call's own span gives (not filled in from its parent, root or events), so that the
# live dates' rows are the kept calls as they are (store.catalog's llm_calls_kept_live): none of llm_calls' joins,
# which DuckDB keeps even when no column they add is read (half the cost of a live day's calls).
OWN_FACT_COLUMNS = (
    "operation", "provider", "service_name", "project", "status", "request_model", "response_model", "error_type",
    "cost_source", "date", "start_time", "duration_ms", "time_to_first_token_ms", "input_tokens", "output_tokens",
    "total_tokens", "cost_usd",
)  # fmt: skip
_OWN = ", ".join(OWN_FACT_COLUMNS)
# The tables a date's rollup reads (store.catalog.WINDOWED_TABLES), and how many days either side.
INPUT_TABLES = ("spans", "llm_calls", "llm_messages")
REACH = timedelta(days=1)

# The views over rollups and live rows.
# No time filter on the rollup and memo rows: plan() reads only the rollups of the window's dates, and every
# windowed query filters its rows itself (a filter here only misleads DuckDB's join order estimates).
_UNIONS = f"""
CREATE OR REPLACE VIEW task_rows AS
SELECT * FROM rollup_tasks UNION ALL BY NAME SELECT * FROM live_tasks;
CREATE OR REPLACE VIEW llm_calls AS
SELECT * EXCLUDE (model, name) FROM rollup_llm_calls UNION ALL BY NAME SELECT * FROM live_llm_calls_base;
CREATE OR REPLACE VIEW llm_call_dimensions AS
SELECT * FROM rollup_llm_calls UNION ALL BY NAME SELECT * FROM live_llm_calls;
CREATE OR REPLACE VIEW llm_call_facts AS
SELECT * FROM rollup_llm_call_facts UNION ALL BY NAME SELECT {_FACTS} FROM live_llm_calls;
CREATE OR REPLACE VIEW llm_call_own_facts AS
SELECT {_OWN} FROM rollup_llm_call_facts UNION ALL BY NAME SELECT {_OWN} FROM live_llm_calls_own;
"""
# The live rows: computed by every query, or read from the connection's memo of them (`enable_memo`).
_NOT_ROLLED_UP = "NOT list_contains(coalesce(getvariable('vigil_rollup_dates'), []::DATE[]), date)"
_LIVE_SOURCES = {
    "tasks": "task_rows_live",
    "llm_calls": "llm_call_dimensions_live",
    "llm_calls_base": "llm_calls_live",
    "llm_calls_own": "llm_calls_kept_live",
}
_KIND_OF = {"tasks": "tasks", "llm_calls": "llm_calls", "llm_calls_base": "llm_calls", "llm_calls_own": "llm_calls"}
# A memo holds the live dates' rows in memory: only while their files are at most this big.
MEMO_MAX_BYTES = 256 << 20


def rollup_dir(root: Path, kind: str) -> Path:
    return root / ROLLUP_DIR / kind


def file_date(path: str | Path) -> date | None:
    """The partition date of a stored file (`.../date=YYYY-MM-DD/name.parquet`)."""
    return _folder_date(str(path).rsplit("/", 2)[-2])


@functools.lru_cache(maxsize=4096)
def _folder_date(folder: str) -> date | None:
    try:
        return date.fromisoformat(folder.removeprefix("date="))
    except ValueError:
        return None


def define_views(con: duckdb.DuckDBPyConnection, code: str) -> None:
    """Views over the rollups and the live rows; `code` is the SQL of the live views (part of every signature)."""
    con.execute("SET VARIABLE vigil_rollup_code = ?", [code_hash(code)])
    for kind, live in KINDS.items():
        # DESCRIBE only binds the view (running even LIMIT 0 plans and opens every file)
        columns = con.execute(f"DESCRIBE SELECT * FROM {live}").fetchall()
        typed = ", ".join(f'"{name}" {kind_}' for name, kind_, *_ in columns)
        con.execute(f"CREATE OR REPLACE TABLE _empty_rollup_{kind} ({typed})")
    con.execute(f"CREATE OR REPLACE TABLE _empty_rollup_{FACTS} AS SELECT {_FACTS} FROM _empty_rollup_llm_calls")
    for kind in ALL_KINDS:
        con.execute(f"RESET VARIABLE vigil_rollup_shape_{kind}")
        _define_reader(con, kind, has_files=False)
    con.execute("RESET VARIABLE vigil_rollup_dates")
    con.execute("RESET VARIABLE vigil_memo_key")
    con.execute("RESET VARIABLE vigil_memo_shape")
    # Creating a view binds everything below it: the views over the live rows (and whatever the caller defines on
    # them before bind_live) bind over empty tables of the same columns first: a third less time to connect.
    for name in _LIVE_SOURCES:
        con.execute(f"CREATE OR REPLACE VIEW live_{name} AS {_rows_of(name, f'_empty_rollup_{_KIND_OF[name]}')}")
    con.execute(_UNIONS)


def bind_live(con: duckdb.DuckDBPyConnection) -> None:
    """Point the live views at the live rows (after define_views and the views the caller builds on them)."""
    _define_live(con, memo=False)


def code_hash(code: str) -> str:
    """Of the live views' SQL and the facts' columns: a rollup written with other facts is not read."""
    return hashlib.sha256(f"{code}\n{_FACTS}".encode()).hexdigest()[:16]


def enable_memo(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the live dates' rows in memory between queries while their files stay the same (a dashboard's
    connection: a page runs a dozen queries over the same today and yesterday)."""
    con.execute("SET VARIABLE vigil_memo_enabled = true")


def _define_live(con: duckdb.DuckDBPyConnection, memo: bool) -> None:
    if con.execute("SELECT getvariable('vigil_memo_shape')").fetchall()[0][0] == memo:
        return
    for name, view in _LIVE_SOURCES.items():
        # the memo of the calls serves llm_calls too (less the two columns llm_call_dimensions adds)
        sql = _rows_of(name, f"_memo_{_KIND_OF[name]}") if memo else f"SELECT * FROM {view} WHERE {_NOT_ROLLED_UP}"
        con.execute(f"CREATE OR REPLACE VIEW main.live_{name} AS {sql}")  # main: see _define_reader
    con.execute(f"SET VARIABLE vigil_memo_shape = {memo}")


def _rows_of(name: str, table: str) -> str:
    """The live view `name`'s rows from `table`, which holds its kind's rows (an empty rollup table or the memo)."""
    return f"SELECT {'* EXCLUDE (model, name)' if name == 'llm_calls_base' else '*'} FROM {table}"


def _define_reader(con: duckdb.DuckDBPyConnection, kind: str, has_files: bool) -> None:
    state = f"vigil_rollup_shape_{kind}"
    if con.execute(f"SELECT getvariable('{state}')").fetchall()[0][0] == has_files:
        return
    source = (
        f"read_parquet(getvariable('vigil_rollup_files_{kind}'), union_by_name = true)"
        if has_files
        else f"_empty_rollup_{kind}"
    )
    # main. explicitly: the dashboards query with `filtered` first on the search path, where a bare name would land
    # (and the views in main, which resolve names in main first, would never see it)
    con.execute(f"CREATE OR REPLACE VIEW main.rollup_{kind} AS SELECT * FROM {source}")
    con.execute(f"SET VARIABLE {state} = {has_files}")


def signature(code: str, listing: dict[str, list[str]], day: date) -> str:
    """What a rollup of `day` was computed from: the view SQL and the input files around the date."""
    return _signature(code, _by_date(listing), day, {})


def _by_date(listing: dict[str, list[str]]) -> dict[date | None, list[tuple[str, str]]]:
    index: dict[date | None, list[tuple[str, str]]] = {}
    for table in INPUT_TABLES:
        for path in listing.get(table) or ():
            index.setdefault(file_date(path), []).append((table, path))
    return index


def file_stamp(path: str, stats: dict[str, str]) -> str:
    """`size:mtime_ns` of a listed file (kept in `stats`), or 'gone': what a memo or rollup key notes of it."""
    if path not in stats:
        try:
            st = os.stat(path)
            stats[path] = f"{st.st_size}:{st.st_mtime_ns}"
        except FileNotFoundError:  # deleted since the listing: no rollup can match
            stats[path] = "gone"
    return stats[path]


def _signature(code: str, index: dict, day: date, stats: dict[str, str]) -> str:
    digest = hashlib.sha256(code.encode())
    for table, path in sorted(item for d in (day - REACH, day, day + REACH) for item in index.get(d, ())):
        digest.update(
            f"{table}/{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}:{file_stamp(path, stats)}\n".encode()
        )
    return digest.hexdigest()[:24]


def valid_rollups(root: Path, code: str, listing: dict[str, list[str]]) -> dict[date, dict[str, Path]]:
    """Date → {kind: file} for the dates whose rollups match the current listing (every kind)."""
    found: dict[date, dict[str, set[str]]] = {}
    for kind in ALL_KINDS:
        for path in rollup_dir(root, kind).glob(f"date=*/{PREFIX}*.parquet"):
            day = file_date(path)
            if day is not None:
                found.setdefault(day, {}).setdefault(path.name, set()).add(kind)
    index, stats = _by_date(listing), {}
    valid = {}
    for day, names in found.items():
        name = f"{PREFIX}{_signature(code, index, day, stats)}.parquet"
        if names.get(name) == set(ALL_KINDS):  # every kind: a date half written is not used
            valid[day] = {kind: rollup_dir(root, kind) / f"date={day}" / name for kind in ALL_KINDS}
    return valid


def plan(con: duckdb.DuckDBPyConnection, root: Path, listing: dict[str, list[str]]) -> dict[str, list[str]]:
    """Point the rollup views at the valid rollups inside the query's window; return what stays live:
    the input tables' files of the dates without a valid rollup and of their neighbours."""
    code, since, until = con.execute(
        "SELECT getvariable('vigil_rollup_code'), getvariable('vigil_window_since_date'), "
        "getvariable('vigil_window_until_date')"
    ).fetchall()[0]
    valid = valid_rollups(root, code, listing)
    in_window = [d for d in valid if (since is None or d >= since) and (until is None or d <= until)]
    con.execute("SET VARIABLE vigil_rollup_dates = ?::DATE[]", [sorted(valid)])
    for kind in ALL_KINDS:
        files = [str(valid[d][kind]) for d in sorted(in_window)]
        con.execute(f"SET VARIABLE vigil_rollup_files_{kind} = ?::VARCHAR[]", [files])
        _define_reader(con, kind, has_files=bool(files))
    if not valid:
        return {table: listing.get(table) or [] for table in INPUT_TABLES}
    dates = {file_date(p) for table in INPUT_TABLES for p in listing.get(table) or ()}
    live = {d for d in dates if d is not None and d not in valid}
    read = {d + step for d in live for step in (-REACH, timedelta(0), REACH)} | {None}
    return {table: [p for p in listing.get(table) or () if file_date(p) in read] for table in INPUT_TABLES}


def memo_to_build(con: duckdb.DuckDBPyConnection, live: dict[str, list[str]]) -> str | None:
    """With the memo enabled and the live files small enough: the key of a memo to build now (None when the
    current one is right). Otherwise the live views compute per query, and None."""
    enabled, current, dates, code = con.execute(
        "SELECT getvariable('vigil_memo_enabled'), getvariable('vigil_memo_key'), getvariable('vigil_rollup_dates'), "
        "getvariable('vigil_rollup_code')"
    ).fetchall()[0]
    stats: dict[str, str] = {}
    files = sorted(f"{t}:{p}:{file_stamp(p, stats)}" for t, paths in live.items() for p in paths)
    size = sum(int(v.split(":")[0]) for v in stats.values() if v != "gone")
    if not enabled or not files or size > MEMO_MAX_BYTES:
        _define_live(con, memo=False)
        return None
    key = hashlib.sha256("\n".join([code, str(dates), *files]).encode()).hexdigest()[:24]
    if key == current:
        _define_live(con, memo=True)
        return None
    return key


def build_memo(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """The live rows of every date without a rollup, unwindowed (the caller lifts the window first)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _memo_tasks AS SELECT * FROM task_rows_live WHERE {_NOT_ROLLED_UP}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _memo_llm_calls AS SELECT * FROM llm_call_dimensions_live WHERE {_NOT_ROLLED_UP}"
    )
    con.execute("SET VARIABLE vigil_memo_key = ?", [key])
    _define_live(con, memo=True)


def locate_trace(
    con: duckdb.DuckDBPyConnection, root: Path, listing: dict[str, list[str]], trace_id: str
) -> datetime | None:
    """The start of the task of `trace_id` when a valid rollup (or the connection's memo) holds it; None: it may
    be anywhere (an unknown id, a trace without a root, a live date without a memo)."""
    code, memo = con.execute("SELECT getvariable('vigil_rollup_code'), getvariable('vigil_memo_shape')").fetchall()[0]
    files = [str(paths["tasks"]) for paths in valid_rollups(root, code, listing).values()]
    sources = ["SELECT trace_id, start_time FROM read_parquet(getvariable('vigil_trace_files'))"] if files else []
    if memo:  # a task's start never changes: even a memo about to be rebuilt knows it right
        sources.append("SELECT trace_id, start_time FROM _memo_tasks")
    if not sources:
        return None
    con.execute("SET VARIABLE vigil_trace_files = ?::VARCHAR[]", [files])
    union = " UNION ALL ".join(sources)
    return con.execute(f"SELECT min(start_time) FROM ({union}) WHERE trace_id = ?", [trace_id]).fetchall()[0][0]


def drop_rollups(root: Path, dates: set[date | None]) -> int:
    """Delete the rollups of `dates` (retention: their rows expired; the builder: no data left). A query that
    listed one retries (store.catalog.fetch); it was no longer valid for a new listing anyway."""
    removed = 0
    for kind in ALL_KINDS:
        for day in dates - {None}:
            folder = rollup_dir(root, kind) / f"date={day}"
            for path in folder.glob("*.parquet"):
                path.unlink(missing_ok=True)
                removed += 1
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
    return removed
