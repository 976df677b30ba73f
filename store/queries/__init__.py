"""Named SQL queries: each metric is one `.sql` file here, used by the CLI, dashboards and tests.

A file's first line is a `--` comment naming its parameters and output columns. Parameters are
DuckDB named parameters (`$since`), bound by `run`, never formatted into the SQL. The one thing
formatted in is the grouping expression, and only from a fixed table, never from user text:
`{group}` in a query over `tasks` takes it from `GROUPS`, `{call_group}` in a query over
`llm_calls` from `CALL_GROUPS`; both are chosen by `run(..., group=NAME)`.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

from store.catalog import fetch, set_window

# A query filtering its rows' start (or any time column) on $since/$until exactly this way lets
# the views read only the partitions around the window (store.catalog.set_window). A query using
# $since/$until any other way (a previous window, a baseline) gets every partition: always right.
_WINDOW_CLAUSE = re.compile(r"\(\$(since|until)::TIMESTAMPTZ IS NULL OR \w+(\.\w+)? (>=|<) \$\1::TIMESTAMPTZ\)")


@cache
def load(name: str) -> str:
    try:
        return resources.files(__package__).joinpath(f"{name}.sql").read_text()
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".sql"))


# What a metric can be broken down by (`vigil report --by`, dashboard selectors): name → SQL over `tasks`.
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


# The same for queries over `llm_calls` (refusal rate, validation failures): name → SQL over llm_calls.
CALL_GROUPS = {
    "all": "'all'",
    "service": "service_name",
    "model": "coalesce(request_model, response_model, '?')",
    "provider": "coalesce(provider, '?')",
    "operation": "coalesce(operation, '?')",
    "prompt_version": GROUPS["prompt_version"],
    "output_format": "coalesce(output_format, '?')",
    "day": GROUPS["day"],
    "week": GROUPS["week"],
}


def run(con: duckdb.DuckDBPyConnection, name: str, group: str = "all", **params: Any) -> pa.Table:
    sql = load(name)
    for placeholder, groups in (("{group}", GROUPS), ("{call_group}", CALL_GROUPS)):
        if placeholder in sql:
            if group not in groups:
                raise KeyError(f"query {name} cannot group by {group!r}; choose one of {', '.join(groups)}")
            sql = sql.replace(placeholder, groups[group])
    if group not in GROUPS and group not in CALL_GROUPS:
        raise KeyError(f"cannot group by {group!r}; choose one of {', '.join(GROUPS | CALL_GROUPS)}")
    # Every parameter the SQL names is bound; one not given is NULL (an open end, "all").
    wanted = set(re.findall(r"\$(\w+)", sql))
    unknown = set(params) - wanted
    if unknown:
        raise KeyError(f"query {name} takes no parameter {', '.join(sorted(unknown))}")
    windowed = "$since" in sql and not re.search(r"\$(since|until)\b", _WINDOW_CLAUSE.sub("", sql))
    if windowed:
        set_window(con, params.get("since"), params.get("until"))
    try:
        table = fetch(con, sql, {key: params.get(key) for key in wanted} or None)
    finally:
        if windowed:
            set_window(con, None, None)
    assert table is not None, f"query {name} returns no rows"
    return table
