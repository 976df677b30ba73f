"""`vigil reprice` and `vigil quality recompute` on an S3 Delta store (moto on loopback).

Each day of a table is rewritten in one Delta commit (overwrite with a `date = 'D'` predicate). What a
reader sees is the day before or after, and a commit racing the rewrite is neither lost nor doubled:
- a collector's append to that day, or a compaction that replaced the day's files, committed between
  the read and the rewrite's commit makes delta-rs refuse the commit (a conflict on the predicate), and
  the day is read again and rewritten: the appended rows stay once, merged rows are not doubled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from store.catalog import connect, fetch
from store.config import Config
from store.delta import compact_tables
from store.delta_rewrite import rewrite_partitions
from store.location import append_rows, table_location
from store.pricing import Pricer
from store.quality.recompute import recompute_store
from store.quality.refusal import DEFAULT_RULES
from store.reprice import RepriceSummary, reprice_rows, reprice_store
from store.schema import LLM_CALLS_SCHEMA
from tests.replay_store import call_row
from vigil.cli import main

if TYPE_CHECKING:
    from tests.s3_server import S3

pytest_plugins = ["tests.s3_server"]

DAY = 86_400 * 10**9
M = 1_000_000


def _calls(config: Config, first: int, n: int, days_back: int = 0, **fields: object) -> None:
    rows = [call_row(i, **fields) for i in range(first, first + n)]
    for row in rows:
        row["start_time"] -= days_back * DAY
        row["end_time"] -= days_back * DAY
    append_rows(config.store, "llm_calls", pa.Table.from_pylist(rows, LLM_CALLS_SCHEMA))


def _stored(config: Config) -> list[dict]:
    sql = "SELECT trace_id, cost_usd, cost_source, refused FROM llm_calls ORDER BY trace_id"
    return fetch(connect(config.store.data_dir, config), sql).to_pylist()


def _raw_count(config: Config) -> int:
    return fetch(connect(config.store.data_dir, config), "SELECT count(*) n FROM llm_calls_raw").to_pylist()[0]["n"]


def test_reprice_rewrites_each_day_once_and_then_nothing(
    tmp_path: Path, s3: S3, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = s3.config(tmp_path / "state")
    _calls(config, 1, 3, input_tokens=M, output_tokens=0, cost_usd=None, cost_source=None)
    _calls(config, 4, 2, days_back=3, input_tokens=M, output_tokens=0, cost_usd=None, cost_source=None)
    _calls(config, 6, 1, input_tokens=M, output_tokens=0, cost_usd=9.0, cost_source="reported")
    seen = []
    summary = reprice_store(config.store, Pricer(), lambda done, total: seen.append((done, total)))
    assert (summary.files, summary.rewritten, summary.calls, summary.changed) == (2, 2, 6, 5)
    assert seen == [(1, 2), (2, 2)]
    costs = {r["trace_id"][-1]: (round(r["cost_usd"], 6), r["cost_source"]) for r in _stored(config)}
    assert costs == {str(i): (0.15, "table") for i in range(1, 6)} | {"6": (9.0, "reported")}
    assert _raw_count(config) == 6, "a rewrite replaces the day's rows, it adds none"
    assert reprice_store(config.store, Pricer()).rewritten == 0, "nothing changed the second time"

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit):
        main(["reprice", "--data-dir", str(tmp_path / "state")])
    assert "repriced 6 calls in 2 days: 0 changed (0 days rewritten)" in capsys.readouterr().out


def test_an_append_during_the_rewrite_makes_it_read_the_day_again(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")
    location = table_location(config.store)
    _calls(config, 1, 3, input_tokens=M, output_tokens=0, cost_usd=None, cost_source=None)
    reads = []

    def rewrite(rows: pa.Table) -> pa.Table | None:
        reads.append(rows.num_rows)
        if len(reads) == 1:  # a collector commits to the same day after the rewrite read it
            _calls(config, 7, 2, input_tokens=M, output_tokens=0, cost_usd=0.5, cost_source="table")
        return reprice_rows(rows, Pricer(), RepriceSummary())

    assert rewrite_partitions(location, "llm_calls", rewrite) == (1, 1)
    assert reads == [3, 5], "delta-rs refused the commit (files added to the day it replaces): read again"
    costs = {r["trace_id"][-1]: round(r["cost_usd"], 6) for r in _stored(config)}
    assert costs == dict.fromkeys("12378", 0.15), "the appended calls are there once, repriced with the rest"
    assert _raw_count(config) == 5


def test_a_compaction_during_the_rewrite_makes_it_read_the_day_again(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")
    location = table_location(config.store)
    for first in (1, 3):  # two files, so compaction has something to merge
        _calls(config, first, 2, input_tokens=M, output_tokens=0, cost_usd=None, cost_source=None)
    reads = []

    def rewrite(rows: pa.Table) -> pa.Table | None:
        reads.append(rows.num_rows)
        if len(reads) == 1:
            compact_tables(location, grace_s=3600)  # merges the two files the rewrite read
        return reprice_rows(rows, Pricer(), RepriceSummary())

    assert rewrite_partitions(location, "llm_calls", rewrite) == (1, 1)
    assert reads == [4, 4], "the commit was refused once and the day read again"
    assert [round(r["cost_usd"], 6) for r in _stored(config)] == [0.15] * 4
    assert _raw_count(config) == 4


def test_quality_recompute_on_delta(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")
    _calls(config, 1, 2, output_text="I'm sorry, but I can't help with that.", refused=None)
    _calls(config, 3, 1)
    summary = recompute_store(config.store, DEFAULT_RULES)
    assert (summary.files, summary.rewritten, summary.refused) == (1, 1, 2)
    assert [r["refused"] for r in _stored(config)] == [True, True, False]
    assert recompute_store(config.store, DEFAULT_RULES).rewritten == 0
