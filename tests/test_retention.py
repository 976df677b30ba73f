"""Retention: only partitions past their limit go, per table and per project, while readers keep reading."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from collector.server import Collector
from store.catalog import connect, fetch
from store.compaction import compact
from store.config import ConfigError, RetentionConfig, load_config
from store.location import Destination, append_rows
from store.retention import apply_retention, days_for
from store.schema import SPANS_SCHEMA
from tests.conftest import query, wait_for
from vigil.cli import main

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _spans(
    root: Destination, days_ago: int, project: str | None, n: int = 3, files: int = 1, now: datetime = NOW
) -> None:
    start = now - timedelta(days=days_ago)
    for f in range(files):
        rows = {
            "trace_id": [f"{days_ago:08x}{f:04x}{i:020x}" for i in range(n)],
            "span_id": [f"{i:016x}" for i in range(n)],
            "name": [f"{project}-{days_ago}"] * n,
            "start_time": [start] * n,
            "project": [project] * n,
            "received_at": [start] * n,
        }
        columns = {field.name: rows.get(field.name, [None] * n) for field in SPANS_SCHEMA}
        append_rows(root, "spans", pa.table(columns, schema=SPANS_SCHEMA))


def _mixed_file(root: Destination, start: datetime) -> None:
    """One file with a span of project short, one of long and one without a project."""
    rows = {
        "trace_id": ["aa" * 16, "bb" * 16, "cc" * 16],
        "span_id": ["01" * 8] * 3,
        "name": ["mixed-short", "mixed-long", "mixed-none"],
        "start_time": [start] * 3,
        "project": ["short", "long", None],
        "received_at": [start] * 3,
    }
    append_rows(root, "spans", pa.table({f.name: rows.get(f.name, [None] * 3) for f in SPANS_SCHEMA}, SPANS_SCHEMA))


def _names(root: Path) -> list[tuple[str, int]]:
    return [(r["name"], r["n"]) for r in query(root, "SELECT name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1")]


def test_limits_resolve_project_table_then_project_then_table_then_default() -> None:
    retention = RetentionConfig(
        default_days=90, tables={"spans": 30}, projects={"acme": 7}, project_tables={"acme:logs": 365}
    )
    assert days_for(retention, "spans", None) == 30
    assert days_for(retention, "logs", None) == 90
    assert days_for(retention, "spans", "acme") == 7
    assert days_for(retention, "logs", "acme") == 365
    assert days_for(retention, "spans", "other") == 30


def test_config_rejects_unknown_tables_and_bad_keys() -> None:
    with pytest.raises(ConfigError, match="unknown table 'span'"):
        load_config(env={}, overrides={"retention": {"tables": {"span": 3}}})
    with pytest.raises(ConfigError, match='must be "project:table"'):
        load_config(env={}, overrides={"retention": {"project_tables": {"acme": 3}}})
    with pytest.raises(ConfigError, match="must be >= 0"):
        load_config(env={}, overrides={"retention": {"default_days": -1}})


def test_only_partitions_past_the_table_limit_are_deleted(tmp_path: Path) -> None:
    for days_ago in (40, 31, 29, 0):
        _spans(tmp_path, days_ago, None)
    retention = RetentionConfig(tables={"spans": 30})
    planned = apply_retention(tmp_path, retention, now=NOW, dry_run=True)
    assert [r.partition for r in planned] == ["date=2026-10-22", "date=2026-10-31"]
    assert len(_names(tmp_path)) == 4, "a dry run deletes nothing"
    done = apply_retention(tmp_path, retention, now=NOW)
    assert [(r.partition, r.files_deleted) for r in done] == [("date=2026-10-22", 1), ("date=2026-10-31", 1)]
    assert _names(tmp_path) == [("None-0", 3), ("None-29", 3)]
    assert not (tmp_path / "spans" / "date=2026-10-22").exists()
    assert apply_retention(tmp_path, RetentionConfig(), now=NOW) == [], "0 days keeps everything"


def test_per_project_limits_rewrite_mixed_files_and_keep_the_rest(tmp_path: Path) -> None:
    _spans(tmp_path, 10, "short")
    _spans(tmp_path, 10, "long")
    _mixed_file(tmp_path, NOW - timedelta(days=10))
    _spans(tmp_path, 3, "short")
    retention = RetentionConfig(projects={"short": 7})
    results = apply_retention(tmp_path, retention, now=NOW)
    assert [(r.partition, r.files_deleted, r.files_rewritten, r.projects) for r in results] == [
        ("date=2026-11-21", 1, 1, ("short",))
    ]
    assert _names(tmp_path) == [("long-10", 3), ("mixed-long", 1), ("mixed-none", 1), ("short-3", 3)]
    assert apply_retention(tmp_path, retention, now=NOW) == [], "nothing left to do"


def test_compacted_files_expire_like_fresh_ones(tmp_path: Path) -> None:
    _spans(tmp_path, 40, None, files=2)
    _mixed_file(tmp_path, NOW - timedelta(days=10))
    compact(tmp_path, min_files=1, grace_s=0)
    assert all(p.name.startswith("compacted-") for p in tmp_path.glob("spans/date=*/*.parquet"))
    results = apply_retention(tmp_path, RetentionConfig(tables={"spans": 30}, projects={"short": 7}), now=NOW)
    assert [(r.partition, r.files_deleted, r.files_rewritten) for r in results] == [
        ("date=2026-10-22", 1, 0),
        ("date=2026-11-21", 0, 1),
    ]
    assert _names(tmp_path) == [("mixed-long", 1), ("mixed-none", 1)]


def test_readers_keep_working_while_partitions_are_deleted(tmp_path: Path) -> None:
    for days_ago in range(40, 20, -1):
        _spans(tmp_path, days_ago, None, n=50, files=3)
    con = connect(tmp_path)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                counts.append(fetch(con.cursor(), "SELECT count(*) FROM spans").to_pylist()[0]["count_star()"])
            except BaseException as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(0.2)
        apply_retention(tmp_path, RetentionConfig(tables={"spans": 30}), now=NOW)
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert counts[0] == 20 * 150 and counts[-1] == 10 * 150  # 21-30 days old are kept
    assert counts == sorted(counts, reverse=True), "rows only ever go away"


def test_cli_dry_run_then_apply(tmp_path: Path, capsys) -> None:
    _spans(tmp_path, 400, None)
    config = tmp_path / "vigil.toml"
    config.write_text("[retention]\ndefault_days = 365\n")
    args = ["retention", "apply", "--data-dir", str(tmp_path), "--config", str(config)]
    with pytest.raises(SystemExit):
        main([*args, "--dry-run"])
    assert "would delete 1 files" in capsys.readouterr().out
    assert _names(tmp_path)  # still there
    with pytest.raises(SystemExit):
        main(args)
    assert "deleted 1 files" in capsys.readouterr().out
    assert not list(tmp_path.glob("spans/date=*/*.parquet"))


def test_the_collector_applies_retention_in_the_background(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _spans(root, 50, None, now=datetime.now(UTC))
    config = load_config(
        env={},
        overrides={
            "store": {"data_dir": str(root)},
            "collector": {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", "decode_workers": 0},
            "retention": {"tables": {"spans": 30}, "interval_s": 0.2},
        },
    )
    with Collector(config) as collector:
        files = wait_for(lambda: list(root.glob("spans/date=*/*.parquet")), lambda f: not f)
        assert files == []
        assert wait_for(lambda: collector.counters.get("retention_runs"), lambda n: n >= 1) >= 1
