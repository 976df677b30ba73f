"""Fast views: compacted files read without a dedupe window, time windows pruning partitions.

What must hold: a row in both a compacted and a fresh file (a WAL replay after compaction) counts
once; a windowed named query returns exactly what it returns reading every partition, and reads
only the partitions around its window; compacted files of a partition never share a key, also
after merging them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from bench.store_gen import build_store
from store.catalog import connect, fetch, set_window
from store.compaction import compact, merge_compacted
from store.queries import is_windowed, load, names, run
from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA
from store.writer import COMPACTED_PREFIX, write_file, write_partitioned
from tests.conftest import query

BASE = datetime(2026, 3, 10, 12, tzinfo=UTC)
NS = 10**9


def _calls(first: int, count: int, received: int, cost: float = 1.0) -> pa.Table:
    start = int(BASE.timestamp()) * NS
    rows = [
        {"trace_id": f"{n:032x}", "span_id": f"{n:016x}", "start_time": start + n * NS, "cost_usd": cost,
         "prompt_name": "p", "prompt_version": "1", "received_at": start + received}
        for n in range(first, first + count)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, LLM_CALLS_SCHEMA)


def _folder(root: Path, table: str = "llm_calls") -> Path:
    return root / table / f"date={BASE:%Y-%m-%d}"


def test_a_row_in_a_compacted_and_a_fresh_file_counts_once(tmp_path: Path) -> None:
    write_file(_folder(tmp_path), _calls(0, 10, received=1, cost=1.0), compacted=True)
    # A WAL replay after compaction sends 5 of them again (later, and say with a different cost),
    # twice over, next to 3 new calls.
    write_partitioned(tmp_path, "llm_calls", _calls(5, 8, received=2, cost=2.0))
    write_partitioned(tmp_path, "llm_calls", _calls(5, 5, received=3, cost=3.0))
    rows = query(tmp_path, "SELECT count(*) AS n, sum(cost_usd) AS cost FROM llm_calls")
    assert rows == [{"n": 13, "cost": 10 * 1.0 + 3 * 2.0}], "the compacted copy wins, new calls count once"
    assert query(tmp_path, "SELECT count(*) AS n FROM llm_calls_raw") == [{"n": 23}]


def test_compaction_never_lets_two_compacted_files_share_a_key(tmp_path: Path) -> None:
    write_file(_folder(tmp_path), _calls(0, 10, received=1), compacted=True)
    for batch in range(3):  # resends of compacted rows, overlapping each other, plus new rows
        write_partitioned(tmp_path, "llm_calls", _calls(5 + batch * 4, 8, received=2 + batch))
    compact(tmp_path, min_files=3, grace_s=0)  # 3 fresh files in: one new compacted file beside the old one
    compacted = sorted(_folder(tmp_path).glob(f"{COMPACTED_PREFIX}*.parquet"))
    assert len(compacted) == 2 and not list(_folder(tmp_path).glob("part-*.parquet"))
    keys = query(tmp_path, "SELECT count(*) AS n, count(DISTINCT span_id) AS keys FROM llm_calls_raw")
    assert keys == [{"n": 21, "keys": 21}], "the new file holds only the 11 keys the old one lacked"
    assert query(tmp_path, "SELECT count(*) AS n FROM llm_calls") == [{"n": 21}]


def test_merging_small_compacted_files_keeps_every_row_once(tmp_path: Path) -> None:
    for batch in range(4):
        write_file(_folder(tmp_path), _calls(batch * 10, 10, received=1), compacted=True)
    result = merge_compacted("llm_calls", _folder(tmp_path), 3, 32 << 20, 512 << 20, settle_s=0)
    assert result is not None and result.files_in == 4 and result.rows_out == 40
    files = sorted(p.name for p in _folder(tmp_path).iterdir())
    assert len(files) == 1 and files[0].startswith(COMPACTED_PREFIX), files
    assert query(tmp_path, "SELECT count(*) AS n, count(DISTINCT span_id) AS k FROM llm_calls") == [{"n": 40, "k": 40}]


def test_a_staged_merge_left_by_a_crash_is_compacted_away(tmp_path: Path) -> None:
    """Crash after step 1 of merge_compacted: the staged copy is fresh and all its rows compacted."""
    write_file(_folder(tmp_path), _calls(0, 10, received=1), compacted=True)
    write_file(_folder(tmp_path), _calls(0, 10, received=1), tag="merge")
    assert query(tmp_path, "SELECT count(*) AS n FROM llm_calls") == [{"n": 10}]
    compact(tmp_path, min_files=8, grace_s=0)  # fewer than min_files small files, but a staged merge
    compact(tmp_path, min_files=8, grace_s=0)  # deletes what the first round replaced
    assert [p.name[: len(COMPACTED_PREFIX)] for p in _folder(tmp_path).iterdir()] == [COMPACTED_PREFIX]


def test_windowed_queries_return_what_reading_everything_returns(tmp_path: Path) -> None:
    end = datetime(2026, 3, 20, tzinfo=UTC)
    build_store(tmp_path, 3000, days=6, end=end, fresh_last_day=3)
    con = connect(tmp_path)
    trace_id = con.execute("SELECT trace_id FROM spans_raw ORDER BY start_time DESC LIMIT 1").fetchall()[0][0]
    checked = 0
    for name in names():
        sql = load(name)
        params = {"trace_id": trace_id} if "$trace_id" in sql else {}
        for since in (end - timedelta(days=1), end - timedelta(days=3)) if "$since" in sql else (None,):
            if since:
                params["since"] = since
            narrowed = run(con, name, **params)
            # The same SQL, bound the same way, without handing the window to the views.
            plain = sql.replace("{group}", "'all'").replace("{call_group}", "'all'")
            full = fetch(
                con,
                plain.replace("{call_facts}", "llm_call_facts"),
                {k: params.get(k) for k in set(_params(sql))} or None,
            )
            _assert_same_rows(narrowed.to_pylist(), full.to_pylist(), name)
            checked += 1
    assert checked > 20
    everything = "SELECT count(*) FROM (SELECT DISTINCT trace_id, span_id FROM spans_raw)"
    assert con.execute("SELECT count(*) FROM spans").fetchall() == con.execute(everything).fetchall(), (
        "run() leaves the views unnarrowed"
    )


def test_a_last_day_window_reads_only_the_partitions_around_it(tmp_path: Path) -> None:
    end = datetime(2026, 3, 20, 12, tzinfo=UTC)
    build_store(tmp_path, 3000, days=10, end=end)
    con = connect(tmp_path)
    since = end - timedelta(hours=6)  # 06:00 on the last day; less the hour of slack still that day
    set_window(con, since, None)
    plan = "\n".join(row[1] for row in con.execute("EXPLAIN ANALYZE SELECT count(*) FROM llm_calls").fetchall())
    assert "Scanning Files: 1/11" in plan, plan
    narrowed = con.execute("SELECT count(*) FROM llm_calls WHERE start_time >= ?", [since]).fetchall()
    set_window(con, None, None)
    plan = "\n".join(row[1] for row in con.execute("EXPLAIN ANALYZE SELECT count(*) FROM llm_calls").fetchall())
    assert "Scanning Files: 1/11" not in plan
    assert narrowed == con.execute("SELECT count(*) FROM llm_calls WHERE start_time >= ?", [since]).fetchall()
    assert narrowed[0][0] > 0


def _assert_same_rows(got: list[dict], expected: list[dict], name: str) -> None:
    """Float sums differ in their last bits with the order rows are added in; ties may come in any order."""

    def key(row: dict) -> str:
        return repr({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})

    assert len(got) == len(expected), name
    for a, b in zip(sorted(got, key=key), sorted(expected, key=key), strict=True):
        assert a.keys() == b.keys(), name
        for column, value in a.items():
            if isinstance(value, float):
                assert math.isclose(value, b[column], rel_tol=1e-9), (name, column)
            else:
                assert value == b[column], (name, column)


def _params(sql: str) -> list[str]:
    import re

    return re.findall(r"\$(\w+)", sql)


def test_spans_of_compacted_and_fresh_files_dedupe_like_calls(tmp_path: Path) -> None:
    start = int(BASE.timestamp()) * NS
    span = {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "root", "start_time": start, "received_at": start}
    write_file(_folder(tmp_path, "spans"), pa.Table.from_pylist([span], SPANS_SCHEMA), compacted=True)
    write_partitioned(tmp_path, "spans", pa.Table.from_pylist([span | {"received_at": start + 1}], SPANS_SCHEMA))
    assert query(tmp_path, "SELECT count(*) AS n FROM spans") == [{"n": 1}]
    assert query(tmp_path, "SELECT count(*) AS n FROM tasks") == [{"n": 1}]


def test_every_query_with_a_window_hands_it_to_the_views() -> None:
    windowed = [name for name in names() if "$since" in load(name)]
    assert windowed and all(is_windowed(load(name)) for name in windowed), windowed
    assert not is_windowed("SELECT * FROM tasks WHERE start_time >= $since::TIMESTAMPTZ - INTERVAL 7 DAY")
