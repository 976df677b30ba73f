"""Rollups (store.rollups) are a cache that cannot change an answer.

What must hold: every named query returns the same rows with rollups as without them (the same
store copied without its `rollups/` folder), before and after late data lands in a rolled-up date,
after compaction rewrites one, after a verdict is posted and with another task rule in the config;
a date whose files changed is computed live until its rollup is rebuilt; retention drops the
rollups of what it expires; a trace found in a rollup is looked up in its partitions only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from bench.store_gen import build_store
from store.catalog import connect, fetch, locate_trace
from store.compaction import compact
from store.config import Config, OutcomesConfig, RetentionConfig
from store.queries import load, names, run
from store.retention import apply_retention
from store.rollup_build import build_rollups
from store.rollups import ALL_KINDS, FACTS, enable_memo, rollup_dir
from store.schema import LLM_CALLS_SCHEMA, OUTCOMES_SCHEMA
from store.writer import remove_stale_temp_files, write_partitioned
from tests.test_query_pruning import _assert_same_rows

END = datetime(2026, 3, 20, 12, tzinfo=UTC)
TODAY = END.date()  # the store holds 14-20 March: rollups for 14-18, 19 and 20 live
SOME = ("cost_per_successful_task", "most_expensive_tasks", "llm_call_rates", "refusal_rate", "filter_options",
        "trace_task", "trace_llm_calls", "search_llm_calls")  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollups") / "store"
    build_store(root, 3000, days=6, end=END, fresh_last_day=3)
    return root


@pytest.fixture
def rolled(store: Path, tmp_path: Path) -> Path:
    """A copy of the store with the rollups of its sealed dates built."""
    root = tmp_path / "rolled"
    shutil.copytree(store, root)
    built = build_rollups(root, today=TODAY)
    assert [r.date for r in built] == [date(2026, 3, 14) + timedelta(days=n) for n in range(5)], built
    assert all(r.tasks > 0 and r.calls > r.tasks for r in built)
    return root


def _trace_on(root: Path, day: date) -> str:
    con = connect(root)
    return con.execute(
        "SELECT trace_id FROM spans_raw WHERE parent_span_id IS NULL AND date = ? ORDER BY trace_id LIMIT 1", [day]
    ).fetchall()[0][0]


def _answers(
    root: Path, queries: tuple[str, ...] | list[str], trace_id: str, config: Config | None = None, memo: bool = False
) -> dict:
    con = connect(root, config)
    if memo:  # the live dates' rows kept between queries, as the dashboards do
        enable_memo(con)
    answers = {}
    for name in queries:
        sql = load(name)
        params = {"trace_id": trace_id} if "$trace_id" in sql else {}
        windows = (None, END - timedelta(days=1), END - timedelta(days=3, hours=5)) if "$since" in sql else (None,)
        for since in windows:
            answers[name, since] = run(con, name, **params, **({"since": since} if since else {})).to_pylist()
    return answers


def _without_rollups(root: Path, tmp_path: Path, queries, trace_id: str, config: Config | None = None) -> dict:
    plain = tmp_path / f"plain-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns("rollups"))
    return _answers(plain, queries, trace_id, config)


def _assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, rows in got.items():
        _assert_same_rows(rows, expected[key], f"{key[0]} since={key[1]}")


def _rollup_dates(root: Path, config: Config | None = None) -> list[date]:
    con = connect(root, config)
    fetch(con, "SELECT 1")  # a query pins the listing and picks the valid rollups
    return con.execute("SELECT getvariable('vigil_rollup_dates')").fetchall()[0][0]


def test_every_named_query_answers_the_same_with_rollups(rolled: Path, tmp_path: Path) -> None:
    trace_id = _trace_on(rolled, date(2026, 3, 15))
    assert _rollup_dates(rolled) == [date(2026, 3, 14) + timedelta(days=n) for n in range(5)]
    with_rollups = _answers(rolled, names(), trace_id)
    _assert_same(with_rollups, _without_rollups(rolled, tmp_path, names(), trace_id))
    _assert_same(_answers(rolled, names(), trace_id, memo=True), with_rollups)
    assert len(with_rollups) > 40 and with_rollups["trace_llm_calls", None], "the trace has calls"


def test_a_date_built_a_slice_of_trace_ids_at_a_time_has_the_rows_built_whole(rolled: Path, tmp_path: Path) -> None:
    """The collector cuts a big date's neighbourhood into slices of trace ids (every view joins within a trace) so
    that its memory stays bounded: the rollups must hold the same rows, still sorted by trace_id. A day later than
    TODAY, so that the 19th is rolled up too: its neighbourhood has fresh files with resent rows to dedupe."""
    today, roots = TODAY + timedelta(days=1), {"whole": tmp_path / "whole", "sliced": tmp_path / "sliced"}
    shutil.copytree(rolled, roots["whole"])
    assert [(r.date, r.slices) for r in build_rollups(roots["whole"], today=today)] == [(date(2026, 3, 19), 1)]
    shutil.copytree(rolled, roots["sliced"], ignore=shutil.ignore_patterns("rollups"))
    (roots["sliced"] / "rollups" / ".slices" / "spans").mkdir(parents=True)  # as a killed build leaves it
    built = build_rollups(roots["sliced"], today=today, slice_input_bytes=20_000)
    assert [r.date for r in built] == [date(2026, 3, 14) + timedelta(days=n) for n in range(6)], built
    assert all(r.slices > 5 for r in built) and not (roots["sliced"] / "rollups" / ".slices").exists(), built
    assert _rollup_dates(roots["whole"]) == _rollup_dates(roots["sliced"]) == [r.date for r in built]
    con = duckdb.connect()
    for kind in ALL_KINDS:
        for day in _rollup_dates(roots["whole"]):
            whole, sliced = (next((rollup_dir(r, kind) / f"date={day}").glob("*.parquet")) for r in roots.values())
            rows = [con.execute(f"SELECT * FROM '{p}'").fetchall() for p in (whole, sliced)]
            assert sorted(rows[1], key=repr) == sorted(rows[0], key=repr) and rows[0], (kind, day)
            if kind != FACTS:
                keys = con.execute(f"SELECT trace_id, start_time FROM '{sliced}'").fetchall()
                assert keys == sorted(keys), f"{kind} of {day} is sorted by trace_id"
    trace_id = _trace_on(rolled, date(2026, 3, 19))
    _assert_same(_answers(roots["sliced"], SOME, trace_id), _answers(roots["whole"], SOME, trace_id))


def test_temp_files_of_a_killed_build_are_removed_at_start(rolled: Path) -> None:
    """A build killed while writing leaves a file no reader lists; remove_stale_temp_files, which the collector
    runs when it starts, removes it (and the rollups stay valid)."""
    dates = _rollup_dates(rolled)
    folder = next((rollup_dir(rolled, "tasks")).glob("date=*"))
    left = [folder / ".rollup-0123.parquet.tmp", rolled / "spans" / folder.name / ".part-0123.parquet.tmp"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PAR1")
    assert remove_stale_temp_files(rolled) == 2 and not any(p.exists() for p in left)
    assert _rollup_dates(rolled) == dates


def test_late_data_makes_its_dates_live_until_rebuilt(rolled: Path, tmp_path: Path) -> None:
    day = date(2026, 3, 15)
    trace_id = _trace_on(rolled, day)
    start = connect(rolled).execute("SELECT start_time FROM tasks WHERE trace_id = ?", [trace_id]).fetchall()[0][0]
    late = {"trace_id": trace_id, "span_id": "f" * 16, "start_time": start + timedelta(seconds=1), "cost_usd": 100.0,
            "status": "ok", "request_model": "late-model", "received_at": END}  # fmt: skip
    write_partitioned(rolled, "llm_calls", pa.Table.from_pylist([late], LLM_CALLS_SCHEMA))
    assert _rollup_dates(rolled) == [date(2026, 3, 17), date(2026, 3, 18)], "14-16 read the 15th's files"
    answers = _answers(rolled, SOME, trace_id)
    _assert_same(answers, _without_rollups(rolled, tmp_path, SOME, trace_id))
    assert any(row["span_id"] == "f" * 16 for row in answers["trace_llm_calls", None]), "the late call counts"
    _assert_same(_answers(rolled, SOME, trace_id, memo=True), answers)
    assert answers["trace_task", None][0]["cost_usd"] > 100
    rebuilt = build_rollups(rolled, today=TODAY)
    assert [r.date for r in rebuilt] == [date(2026, 3, 14), date(2026, 3, 15), date(2026, 3, 16)]
    assert len(list((rollup_dir(rolled, "tasks") / f"date={day}").iterdir())) == 1, "the stale rollup is gone"
    _assert_same(_answers(rolled, SOME, trace_id), answers)


def test_compaction_of_a_rolled_up_date_keeps_the_answers(rolled: Path, tmp_path: Path) -> None:
    trace_id = _trace_on(rolled, date(2026, 3, 16))
    before = _answers(rolled, SOME, trace_id)
    resent = connect(rolled).sql("SELECT * FROM llm_calls_raw WHERE date = '2026-03-16' LIMIT 40").to_arrow_table()
    for part in range(8):  # a WAL replay resends rows of a sealed date: fresh files, then compacted away
        write_partitioned(rolled, "llm_calls", resent.slice(part * 5, 5).drop_columns(["date"]))
    assert date(2026, 3, 16) not in _rollup_dates(rolled)
    _assert_same(_answers(rolled, SOME, trace_id), before)
    assert compact(rolled, min_files=8, grace_s=0)
    compact(rolled, min_files=8, grace_s=0)  # deletes the replaced files
    # Every resent row was compacted already, so the listing is the original one again: so is its rollup.
    assert build_rollups(rolled, today=TODAY) == []
    assert date(2026, 3, 16) in _rollup_dates(rolled)
    _assert_same(_answers(rolled, SOME, trace_id), before)
    _assert_same(before, _without_rollups(rolled, tmp_path, SOME, trace_id))


def test_a_verdict_counts_at_once_on_a_rolled_up_date(rolled: Path, tmp_path: Path) -> None:
    trace_id = _trace_on(rolled, date(2026, 3, 14))
    verdict = {"record_id": "v1", "time": END, "trace_id": trace_id, "outcome": "failure", "source": "test",
               "comment": "wrong answer"}  # fmt: skip
    write_partitioned(rolled, "outcomes", pa.Table.from_pylist([verdict], OUTCOMES_SCHEMA))
    answers = _answers(rolled, SOME, trace_id)
    task = answers["trace_task", None][0]
    verdict_shown = (task["outcome"], task["outcome_source"], task["outcome_comment"])
    assert verdict_shown == ("failure", "verdict:test", "wrong answer")
    assert date(2026, 3, 14) in _rollup_dates(rolled), "verdicts are not rolled up: the rollup stays valid"
    _assert_same(answers, _without_rollups(rolled, tmp_path, SOME, trace_id))


def test_another_task_rule_never_reads_rollups_written_for_the_default(rolled: Path, tmp_path: Path) -> None:
    config = Config(outcomes=OutcomesConfig(task_span_pattern="chat *"))
    assert _rollup_dates(rolled, config) == []
    trace_id = _trace_on(rolled, date(2026, 3, 15))
    _assert_same(_answers(rolled, SOME, trace_id, config), _without_rollups(rolled, tmp_path, SOME, trace_id, config))


def test_retention_drops_the_rollups_of_expired_dates(rolled: Path) -> None:
    apply_retention(rolled, RetentionConfig(default_days=5), now=END)  # 14 March (ended 15 March 00:00) expires
    left = sorted(p.name for p in rollup_dir(rolled, "tasks").iterdir())
    assert left == ["date=2026-03-16", "date=2026-03-17", "date=2026-03-18"], "14 and 15 (read the 14th) are gone"
    assert build_rollups(rolled, today=TODAY) and date(2026, 3, 15) in _rollup_dates(rolled)


def test_a_trace_in_a_rollup_is_looked_up_in_its_partitions(rolled: Path) -> None:
    con = connect(rolled)
    trace_id = _trace_on(rolled, date(2026, 3, 15))
    start = locate_trace(con, trace_id)
    assert start is not None and start.date() == date(2026, 3, 15)
    assert locate_trace(con, _trace_on(rolled, date(2026, 3, 19))) is None, "a live date: look everywhere"
    assert locate_trace(con, "0" * 32) is None
    for name in ("trace_spans", "trace_llm_calls", "trace_task"):  # windowed around its date: the same rows
        narrowed = run(con, name, trace_id=trace_id).to_pylist()
        _assert_same_rows(narrowed, fetch(con, load(name), {"trace_id": trace_id}).to_pylist(), name)
        assert narrowed
    assert con.execute("SELECT getvariable('vigil_window_since')").fetchall() == [(None,)], "and reset after"


def test_queries_with_another_schema_first_in_the_search_path_still_read_the_rollups(rolled: Path) -> None:
    """The dashboards put their `filtered` schema first in search_path. The views a query redefines before it runs
    (rollup readers, deduped and live views) must still land in `main`, where the tables' views read them: in
    another schema they were invisible, and a trace on a rolled-up date showed its spans but none of its calls."""
    trace_id = _trace_on(rolled, date(2026, 3, 15))
    queries = ("trace_llm_calls", "trace_task", "cost_per_successful_task", "refusal_rate")
    expected = _answers(rolled, queries, trace_id)
    con = connect(rolled)
    enable_memo(con)
    con.execute("CREATE SCHEMA filtered")
    con.execute("SET search_path = 'filtered,main'")
    for (name, since), rows in expected.items():
        params = {"trace_id": trace_id} if name.startswith("trace_") else {"since": since}
        got = run(con, name, **params)
        _assert_same_rows(got.to_pylist(), rows, f"{name} since={since}")
    assert expected["trace_llm_calls", None], "the trace has calls"
    created = con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'filtered'").fetchall()
    assert created == [], "nothing was defined in the schema that came first"


def test_the_memo_of_live_rows_follows_new_files(rolled: Path) -> None:
    con = connect(rolled)
    enable_memo(con)
    trace_id = _trace_on(rolled, date(2026, 3, 19))  # a live date
    before = run(con, "trace_task", trace_id=trace_id).to_pylist()[0]["cost_usd"]
    assert con.execute("SELECT count(*) FROM _memo_tasks").fetchall()[0][0] > 0, "the live rows are in the memo"
    start = con.execute("SELECT start_time FROM tasks WHERE trace_id = ?", [trace_id]).fetchall()[0][0]
    late = {"trace_id": trace_id, "span_id": "e" * 16, "start_time": start + timedelta(seconds=1), "cost_usd": 5.0,
            "received_at": END}  # fmt: skip
    write_partitioned(rolled, "llm_calls", pa.Table.from_pylist([late], LLM_CALLS_SCHEMA))
    after = run(con, "trace_task", trace_id=trace_id).to_pylist()[0]["cost_usd"]
    assert after == pytest.approx(before + 5.0), "a new file is a new listing: the memo is built again"


def test_vigil_compact_builds_the_rollups_and_drops_those_without_data(store: Path, tmp_path: Path) -> None:
    root = tmp_path / "cli"
    shutil.copytree(store, root)
    orphan = rollup_dir(root, "tasks") / "date=2020-01-01"  # a date whose data is gone
    orphan.mkdir(parents=True)
    (orphan / "rollup-old.parquet").write_bytes(b"stale")
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "compact", "--data-dir", str(root)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "rollups: " in done.stdout and "dates built" in done.stdout, done.stdout
    assert not orphan.exists()
    assert _rollup_dates(root), "today's clock seals every date of a store that ended in March 2026"
