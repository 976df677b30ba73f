"""The calls' facts (store.rollups.FACTS): llm_calls' rows in the columns aggregates read, sorted for scanning.

What must hold: `llm_call_facts` holds exactly the rows of `llm_call_dimensions` (rolled-up dates from the facts
rollups, the others live); the latency queries' list-form percentiles over it answer exactly what one
quantile_cont per percentile over llm_calls did; filter_options over task_rows answer what they did over tasks; a
rollup written before facts existed gets its facts added without its other files being computed again, and until
then its date is computed live.
"""

from __future__ import annotations

import itertools
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from bench.store_gen import build_store
from store.catalog import connect, fetch
from store.queries import CALL_GROUPS, OWN_CALL_GROUPS, load, run
from store.rollup_build import build_rollups
from store.rollups import FACT_COLUMNS, FACTS, OWN_FACT_COLUMNS, rollup_dir
from store.schema import OUTCOMES_SCHEMA
from store.writer import write_partitioned

END = datetime(2026, 3, 20, 12, tzinfo=UTC)
ROLLED = [date(2026, 3, 14) + timedelta(days=n) for n in range(5)]  # 19 and 20 March stay live
WINDOWS = (None, END - timedelta(days=1), END - timedelta(days=3, hours=5))
# llm_latency_by_model and llm_call_rates as they were: one quantile_cont per percentile, over llm_calls
_SEPARATE_LATENCY = """
SELECT coalesce(request_model, response_model, '?') AS model, coalesce(operation, '?') AS operation,
       count(*) AS calls, count(*) FILTER (status = 'error') AS errors,
       count(*) FILTER (status = 'error') / count(*) AS error_rate,
       quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms, quantile_cont(time_to_first_token_ms, 0.5) AS ttft_p50_ms
FROM llm_calls WHERE ($1::TIMESTAMPTZ IS NULL OR start_time >= $1::TIMESTAMPTZ)
GROUP BY ALL ORDER BY calls DESC, model, operation
"""
_SEPARATE_RATES = """
SELECT {call_group} AS "group", count(*) AS calls, count(*) FILTER (status = 'error') AS errors,
       count(*) FILTER (status = 'error') / count(*) AS error_rate,
       quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms
FROM llm_calls_in($1::TIMESTAMPTZ, NULL, NULL) GROUP BY ALL ORDER BY calls DESC, "group"
"""


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("facts") / "store"
    build_store(root, 2000, days=6, end=END, fresh_last_day=2)
    assert [r.date for r in build_rollups(root, today=END.date())] == ROLLED
    return root


def _rollup_dates(root: Path) -> list[date]:
    con = connect(root)
    fetch(con, "SELECT 1")
    return con.execute("SELECT getvariable('vigil_rollup_dates')").fetchall()[0][0]


def test_the_facts_are_the_calls_rows(rolled: Path) -> None:
    con = connect(rolled)
    columns = ", ".join(FACT_COLUMNS)
    facts = fetch(con, f"SELECT {columns} FROM llm_call_facts ORDER BY ALL").to_pylist()
    own = fetch(con, f"SELECT {', '.join(OWN_FACT_COLUMNS)} FROM llm_call_own_facts").to_pylist()
    assert sorted(map(repr, own)) == sorted(repr({c: row[c] for c in OWN_FACT_COLUMNS}) for row in facts)
    assert con.execute("SELECT len(getvariable('vigil_rollup_files_llm_call_facts'))").fetchall()[0][0] == 5
    calls = fetch(con, f"SELECT {columns} FROM llm_call_dimensions ORDER BY ALL").to_pylist()
    assert facts == calls and len(facts) == 2000, "every call once"
    assert {row["date"] for row in facts} == {*ROLLED, date(2026, 3, 19), date(2026, 3, 20)}, "rolled up and live"


@pytest.mark.parametrize("name", ["llm_latency_by_model", "llm_call_rates"])
def test_list_form_percentiles_equal_one_quantile_each(rolled: Path, tmp_path: Path, name: str) -> None:
    plain = tmp_path / "plain"  # without rollups too: the facts' live side
    shutil.copytree(rolled, plain, ignore=shutil.ignore_patterns("rollups"))
    groups = CALL_GROUPS if name == "llm_call_rates" else {"all": None}  # own facts or not (OWN_CALL_GROUPS)
    for root in (rolled, plain):
        con = connect(root)
        for since, group in itertools.product(WINDOWS, groups):
            params = {"since": since} if since else {}
            got = run(con, name, **({"group": group} if name == "llm_call_rates" else {}), **params).to_pylist()
            reference = _SEPARATE_LATENCY if name == "llm_latency_by_model" else _SEPARATE_RATES
            expected = fetch(con, reference.replace("{call_group}", CALL_GROUPS[group]), [since]).to_pylist()
            assert got == expected, (root.name, since, group)  # exactly: the same values interpolated the same way
            assert got and all(row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] for row in got)
    assert OWN_CALL_GROUPS.issubset(CALL_GROUPS)


def test_a_rollup_without_facts_is_live_until_they_are_added(rolled: Path, tmp_path: Path) -> None:
    root = tmp_path / "older"
    shutil.copytree(rolled, root)
    before = run(connect(root), "llm_latency_by_model").to_pylist()
    shutil.rmtree(rollup_dir(root, FACTS))  # as a rollup of a version before the facts left it
    assert _rollup_dates(root) == [], "a date is rolled up only with every kind"
    assert run(connect(root), "llm_latency_by_model").to_pylist() == before
    kept = {p: p.stat().st_mtime_ns for kind in ("tasks", "llm_calls") for p in rollup_dir(root, kind).rglob("*")}
    assert [r.date for r in build_rollups(root, today=END.date())] == ROLLED
    assert {p: p.stat().st_mtime_ns for p in kept} == kept, "the other kinds are kept, not computed again"
    assert _rollup_dates(root) == ROLLED
    assert run(connect(root), "llm_latency_by_model").to_pylist() == before


def test_filter_options_read_task_rows_as_they_read_tasks(rolled: Path, tmp_path: Path) -> None:
    root = tmp_path / "judged"
    shutil.copytree(rolled, root)
    con = connect(root)  # with a verdict too: tasks joins them, task_rows does not, and the rows are the same
    trace_id = con.execute("SELECT trace_id FROM spans_raw WHERE parent_span_id IS NULL LIMIT 1").fetchall()[0][0]
    verdict = {"record_id": "v1", "time": END, "trace_id": trace_id, "outcome": "failure", "source": "test"}
    write_partitioned(root, "outcomes", pa.Table.from_pylist([verdict], OUTCOMES_SCHEMA))
    got = run(con, "filter_options").to_pylist()
    over_tasks = fetch(con, load("filter_options").replace("FROM task_rows", "FROM tasks")).to_pylist()
    assert "FROM task_rows" in load("filter_options") and got == over_tasks
    assert {row["dimension"] for row in got} == {"service", "model", "prompt_version"}, "(no environments here)"
