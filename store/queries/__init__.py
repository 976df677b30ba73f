"""Named SQL queries: each metric is one `.sql` file here, used by the CLI, dashboards and tests.

A file's first line is a `--` comment naming its parameters and output columns. Parameters are
DuckDB named parameters (`$since`), bound by `run`, never formatted into the SQL.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

from store.catalog import fetch


@cache
def load(name: str) -> str:
    try:
        return resources.files(__package__).joinpath(f"{name}.sql").read_text()
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".sql"))


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pa.Table:
    table = fetch(con, load(name), params or None)
    assert table is not None, f"query {name} returns no rows"
    return table
