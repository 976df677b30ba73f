"""The latest verdict per trace, as the tasks view joins it, and a connection's memo of it.

Outcomes recorded for a trace (`vigil outcome`, the API, the dashboards) are folded to the latest
per trace and per project they were sent for: `verdicts_unscoped` (sent without a project: it
judges the trace whatever its project) and `verdicts_scoped` (sent with an API key's project: it
judges only a trace of that project; see OUTCOMES_SCHEMA). Split in two so that each join of the
tasks view reads only its own rows.

A memo keeps both in memory while the outcome files stay the same (`remember`, on a connection with
store.rollups.enable_memo): folding 200k outcomes took ~130 ms of every query over all tasks.
"""

from __future__ import annotations

import hashlib

import duckdb

from store.rollups import file_stamp

# Per scope: the columns the tasks view joins on, and which outcomes belong to it.
_SCOPES = {
    "verdicts_unscoped": ("trace_id", "project IS NULL"),
    "verdicts_scoped": ("trace_id, project", "project IS NOT NULL"),
}
# The latest verdict's fields as columns of their own, not one struct: a query over tasks then
# reads only the fields it names (a struct went through the joins whole, ~150 ms per 2M tasks).
_FOLD = """
SELECT {columns}, v.label, v.source, v.score, v.comment, v.time FROM (
    SELECT trace_id, project,
           arg_max({{'label': outcome, 'source': source, 'score': score, 'comment': comment, 'time': time}}, time) AS v
    FROM outcomes WHERE {scope} GROUP BY trace_id, project
)
"""


def define_views(con: duckdb.DuckDBPyConnection, memo: bool = False) -> None:
    """The two views, computed from the outcomes per query, or (`memo`) read from the memo tables."""
    for view, (columns, scope) in _SCOPES.items():
        source = f"SELECT * FROM _memo_{view}" if memo else _FOLD.format(columns=columns, scope=scope)
        con.execute(f"CREATE OR REPLACE VIEW main.{view} AS {source}")  # main: see store.rollups._define_reader
    con.execute(f"SET VARIABLE vigil_verdict_memo = {memo}")


def remember(con: duckdb.DuckDBPyConnection, outcome_files: list[str]) -> None:
    """With the memo enabled: make sure the memo matches `outcome_files` (the query's listing), and read it."""
    enabled, current, shape = con.execute(
        "SELECT getvariable('vigil_memo_enabled'), getvariable('vigil_verdict_memo_key'), "
        "getvariable('vigil_verdict_memo')"
    ).fetchall()[0]
    if not enabled:
        return
    key = _key(outcome_files)
    if key != current:
        if shape:
            define_views(con, memo=False)  # the new memo is read from the outcomes, not from the old one
        for view in _SCOPES:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _memo_{view} AS SELECT * FROM {view}")
        con.execute("SET VARIABLE vigil_verdict_memo_key = ?", [key])
    if not shape or key != current:
        define_views(con, memo=True)


def _key(files: list[str]) -> str:
    stamps: dict[str, str] = {}
    listed = "\n".join(f"{path}:{file_stamp(path, stamps)}" for path in sorted(files))
    return hashlib.sha256(listed.encode()).hexdigest()[:24]
