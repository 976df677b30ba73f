"""The dashboards' data layer (dashboards.data) answers what the CLI answers, on a store with rollups.

The dashboards run every query with their `filtered` schema first on the search path and keep a
memo of the live dates (store.rollups.enable_memo); the views a query (re)defines must still land
where the views in `main` find them. So: a store of 6 days with the rollups of its sealed dates
built, and each page's queries through `dashboards.data` (the same cached calls the pages make,
here without a Streamlit server) against `store.queries.run` on a plain connection.
"""

from __future__ import annotations

import logging
import shutil
import threading
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bench.store_gen import build_store
from dashboards import data, warm
from dashboards.filters import Filters
from store.catalog import connect, pin_files
from store.config import Config
from store.queries import run
from store.rollup_build import build_rollups
from store.rollups import enable_memo
from store.schema import TABLES
from store.writer import write_partitioned
from tests.conftest import wait_for
from tests.test_query_pruning import _assert_same_rows

END = datetime(2026, 3, 20, 12, tzinfo=UTC)
TODAY = END.date()  # 14-20 March: rollups for 14-18, 19 and 20 live
# (name, group, params) as the pages ask for them
PAGE_QUERIES = [
    ("cost_per_successful_task", "all", {}),
    ("cost_per_successful_task", "day", {}),
    ("cost_per_successful_task", "model", {}),
    ("task_latency", "all", {}),
    ("task_latency", "service", {}),
    ("llm_latency_by_model", "all", {}),
    ("unpriced_share", "all", {}),
    ("refusal_rate", "all", {}),
    ("validation_failure_rate", "all", {}),
    ("failed_task_cost_breakdown", "all", {}),
    ("most_expensive_tasks", "all", {"limit": 20}),
    ("llm_errors_by_type", "all", {}),
    ("quality_by_day", "all", {}),
]


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboards-data") / "store"
    build_store(root, 3000, days=6, end=END, fresh_last_day=3)
    assert build_rollups(root, today=TODAY)
    return root


@pytest.fixture
def store(rolled: Path) -> data.Store:
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*No runtime found.*")
    for cache in (data._query, data._options, data._connection):
        cache.clear()
    return data.Store(str(rolled), Config(), tuple(TABLES))


@pytest.mark.parametrize("since", [END - timedelta(days=4), END - timedelta(days=1), None], ids=["4d", "1d", "all"])
def test_page_queries_match_the_cli_with_rollups(store: data.Store, rolled: Path, since: datetime | None) -> None:
    filters = Filters(since=since)
    con = connect(rolled)
    for name, group, params in PAGE_QUERIES:
        got = data._query(store, name, group, filters, tuple(sorted(params.items())))
        expected = run(con, name, group=group, since=since, **params).to_pandas()
        assert len(got) and list(got.columns) == list(expected.columns), name
        _assert_same_rows(_records(got), _records(expected), f"{name} by {group}")
    assert data.filter_options(store)  # all time, on the same connection: rollups and memo together
    expected = run(con, "filter_options").to_pandas()
    got = data._query(store, "filter_options", "all", None, ())
    _assert_same_rows(_records(got), _records(expected), "filter_options")


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows with NULL as None (pandas reads a NULL string as NaN, which equals nothing)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _separate_tiles(con: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None) -> dict:
    """The Overview's tile values from the named queries each tile means, one window at a time."""

    def rows(name: str) -> list[dict]:
        return run(con, name, since=since, until=until).to_pylist()

    cost, latency, rates = rows("cost_per_successful_task"), rows("task_latency"), rows("llm_call_rates")
    unpriced, refusals, validation = rows("unpriced_share"), rows("refusal_rate"), rows("validation_failure_rate")
    calls = sum(r["calls"] for r in rates)
    return {
        "tasks": cost[0]["tasks"] if cost else None,
        **{k: cost[0][k] if cost else None for k in ("success_rate", "total_cost_usd", "cost_per_successful_task")},
        **{k: latency[0][k] if latency else None for k in ("p50_ms", "p99_ms")},
        "llm_calls": calls or None,
        "llm_errors": sum(r["errors"] for r in rates) if calls else None,
        "llm_error_rate": sum(r["errors"] for r in rates) / calls if calls else None,
        "unpriced_share": sum(r["share_of_calls"] for r in unpriced) if calls else None,
        "refusal_rate": refusals[0]["refusal_rate"] if refusals else None,
        "validation_failure_rate": validation[0]["failure_rate"] if validation else None,
    }


@pytest.mark.parametrize("days", [4, 1, None], ids=["4d", "1d", "all"])
def test_overview_tiles_equal_the_separate_queries(rolled: Path, days: int | None) -> None:
    """overview_tiles (both windows in one query) against the queries the tiles are defined by."""
    con = connect(rolled)
    boundary = END - timedelta(days=days) if days else None
    since = boundary - timedelta(days=days) if days else None
    rows = run(con, "overview_tiles", since=since, boundary=boundary).to_pylist()
    periods = {r.pop("period"): r for r in rows if r.pop("bucket") is None}
    assert set(periods) == ({"current", "previous"} if days else {"current"})
    expected = {"current": _separate_tiles(con, boundary, None)}
    if days:
        expected["previous"] = _separate_tiles(con, since, boundary)
    for period, values in expected.items():
        assert values["tasks"] and None not in (values["refusal_rate"], values["validation_failure_rate"]), (
            "the store must exercise every tile"
        )
        _assert_same_rows([periods[period]], [values], f"overview_tiles {period}")


@pytest.mark.parametrize("bucket", ["day", "hour"])
def test_overview_trend_buckets_equal_the_separate_queries(rolled: Path, bucket: str) -> None:
    """Each bucket of the current period holds the tiles of that day (or hour) of it alone."""
    con = connect(rolled)
    boundary = END - timedelta(days=3, hours=5)
    rows = run(con, "overview_tiles", since=boundary - timedelta(days=3), boundary=boundary, bucket=bucket).to_pylist()
    buckets = {r["bucket"]: r for r in rows if r.pop("period") == "current" and r["bucket"]}
    length, layout = (timedelta(days=1), "%Y-%m-%d") if bucket == "day" else (timedelta(hours=1), "%Y-%m-%d %H:%M")
    assert len(buckets) == (4 if bucket == "day" else 17 + 24 + 24 + 12), "the 17th 07:00 to the 20th 11:00 (the end)"
    for label in sorted(buckets)[:: 1 if bucket == "day" else 11]:
        start = datetime.strptime(label, layout).replace(tzinfo=UTC)
        expected = {"bucket": label, **_separate_tiles(con, max(start, boundary), start + length)}
        _assert_same_rows([buckets[label]], [expected], f"overview_tiles {bucket} {label}")
    if bucket == "day":  # the Overview's chart shows what the Cost page's by-day chart shows
        by_day = run(con, "cost_per_successful_task", group="day", since=boundary).to_pylist()
        _assert_same_rows(
            [{"bucket": r["group"], "tasks": r["tasks"], "cost": r["cost_per_successful_task"]} for r in by_day],
            [{"bucket": k, "tasks": r["tasks"], "cost": r["cost_per_successful_task"]} for k, r in buckets.items()],
            "the day chart",
        )


def test_keeper_rebuilds_the_memo_when_files_change(rolled: Path, tmp_path: Path, monkeypatch) -> None:
    """New files in a live date: the keeper rebuilds the memo with no query asking, and it then holds the new rows."""
    root = tmp_path / "store"
    shutil.copytree(rolled, root)
    monkeypatch.setattr(warm, "KEEP_EVERY_S", 0.05)
    con, lock = connect(root), threading.Lock()
    enable_memo(con)
    pin_files(con)

    def memo() -> tuple[str, int]:
        with lock:
            return con.execute(
                "SELECT getvariable('vigil_memo_key'), (SELECT count(*) FROM _memo_llm_calls)"
            ).fetchall()[0]

    key, calls = memo()
    assert key and calls
    warm.Keeper(con, lock).touch()
    assert memo() == (key, calls)  # nothing changed: nothing rebuilt
    # a call arriving late in today's partition, as a collector writes it
    sql = "SELECT * EXCLUDE (date) REPLACE (span_id || 'late' AS span_id) FROM llm_calls_raw WHERE date = ? LIMIT 1"
    with lock:  # the keeper may be using the connection
        late = con.sql(sql, params=[TODAY]).to_arrow_table()
    write_partitioned(root, "llm_calls", late)
    rebuilt, now = wait_for(memo, lambda value: value[0] != key)
    assert rebuilt != key and now == calls + 1
