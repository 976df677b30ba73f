"""Named SQL queries: each metric is one `.sql` file here, used by the CLI, dashboards and tests.

A file's first line is a `--` comment naming its parameters and output columns. Parameters are
DuckDB named parameters (`$since`), bound by `run`, never formatted into the SQL. The one thing
formatted in is the grouping expression, and only from a fixed table, never from user text:
`{group}` in a task-level query (over `tasks`) takes it from `GROUPS`, `{call_group}` in a
call-level query (over `llm_call_dimensions` or its `llm_calls_in` macro) from `CALL_GROUPS`;
both are chosen by `run(..., group=NAME)`. A name in both tables groups by the same dimension.
`{call_facts}` names the view of calls' facts that group needs (OWN_CALL_GROUPS).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

from store.catalog import fetch, locate_trace, set_window

# A query filtering its rows' start (or any time column) on $since/$until exactly this way lets
# the views read only the partitions around the window (store.catalog.set_window). A query using
# $since/$until any other way (a previous window, a baseline) gets every partition: always right.
# The canonical window: `($since::TIMESTAMPTZ IS NULL OR start_time >= $since::TIMESTAMPTZ)` and its `$until` twin,
# or the llm_calls_in macro over exactly [$since, $until), which filters the same way; the window's length as a
# number reads no rows, so it may appear too.
_WINDOW_CLAUSE = re.compile(
    r"\(\$(since|until)::TIMESTAMPTZ IS NULL OR \w+(\.\w+)? (>=|<) \$\1::TIMESTAMPTZ\)"
    r"|llm_calls_in\(\$since::TIMESTAMPTZ, \$until::TIMESTAMPTZ,"
    r"|epoch\(\$until::TIMESTAMPTZ - \$since::TIMESTAMPTZ\)"
)


@cache
def load(name: str) -> str:
    try:
        return resources.files(__package__).joinpath(f"{name}.sql").read_text()
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".sql"))


# What a task-level metric can be broken down by (`vigil report --by`, dashboard selectors): name → SQL over `tasks`.
GROUPS = {
    "all": "'all'",
    "service": "service_name",
    "task": "name",
    "model": "model",
    "prompt_version": "coalesce(prompt_name, '?') || '@' || coalesce(prompt_version, '?')",
    "outcome": "outcome",
    "day": "strftime(start_time, '%Y-%m-%d')",
    "week": "strftime(date_trunc('week', start_time), '%Y-%m-%d')",
}


# The same for call-level metrics (error, refusal and validation rates, drift, spend): name → SQL over
# `llm_call_dimensions`, which adds the call's `model` and its task's `name` to llm_calls.
CALL_GROUPS = {
    "all": "'all'",
    "service": "service_name",
    "task": "coalesce(name, '?')",
    "model": "coalesce(model, '?')",
    "provider": "coalesce(provider, '?')",
    "operation": "coalesce(operation, '?')",
    "prompt_version": GROUPS["prompt_version"],
    "output_format": "coalesce(output_format, '?')",
    "day": GROUPS["day"],
    "week": GROUPS["week"],
}


# The call groups whose expression reads only columns a call's own span gives (store.rollups.OWN_FACT_COLUMNS): a
# query over `{call_facts}` grouped by one reads llm_call_own_facts (its live dates need none of llm_calls' joins),
# by any other llm_call_facts.
OWN_CALL_GROUPS = frozenset({"all", "service", "provider", "operation", "day", "week"})


def is_windowed(sql: str) -> bool:
    """Whether the query uses $since/$until only as the canonical window (comments aside)."""
    code = re.sub(r"--[^\n]*", "", sql)
    return "$since" in code and not re.search(r"\$(since|until)\b", _WINDOW_CLAUSE.sub("", code))


def run(con: duckdb.DuckDBPyConnection, name: str, group: str = "all", **params: Any) -> pa.Table:
    sql = load(name)
    for placeholder, groups in (("{group}", GROUPS), ("{call_group}", CALL_GROUPS)):
        if placeholder in sql:
            if group not in groups:
                raise KeyError(f"query {name} cannot group by {group!r}; choose one of {', '.join(groups)}")
            sql = sql.replace(placeholder, groups[group])
    sql = sql.replace("{call_facts}", "llm_call_own_facts" if group in OWN_CALL_GROUPS else "llm_call_facts")
    if group not in GROUPS and group not in CALL_GROUPS:
        raise KeyError(f"cannot group by {group!r}; choose one of {', '.join(GROUPS | CALL_GROUPS)}")
    # Every parameter the SQL names is bound; one not given is NULL (an open end, "all").
    wanted = set(re.findall(r"\$(\w+)", sql))
    unknown = set(params) - wanted
    if unknown:
        raise KeyError(f"query {name} takes no parameter {', '.join(sorted(unknown))}")
    windowed = is_windowed(sql)
    if windowed:
        set_window(con, params.get("since"), params.get("until"))
    elif params.get("trace_id") and not wanted & {"since", "until"}:
        # One trace: find its date first (a rollup knows it), then read only the partitions around it.
        start = locate_trace(con, params["trace_id"])
        windowed = start is not None
        if windowed:
            set_window(con, start, start)
    try:
        table = fetch(con, sql, {key: params.get(key) for key in wanted} or None)
    finally:
        if windowed:
            set_window(con, None, None)
    assert table is not None, f"query {name} returns no rows"
    return table
