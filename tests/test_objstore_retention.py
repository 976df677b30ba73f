"""`[retention]` on an S3 Delta store (moto on loopback): the same limits as local, as Delta deletes.

Rows past their limit stop being read at once (a Delta delete commit); their files stay in the bucket
for readers still on an older snapshot and are deleted by the next `vigil compact` vacuum past the grace
period. `vigil compact --every` is the one job that applies retention on a Delta store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from store.catalog import connect, fetch
from store.config import Config, RetentionConfig
from store.delta import compact_tables
from store.delta_retention import apply_delta_retention
from store.location import stored_tables, table_location
from tests.conftest import wait_for
from tests.test_retention import NOW, _mixed_file, _spans
from vigil.cli import main
from vigil.up import store_has_spans

if TYPE_CHECKING:
    from tests.s3_server import S3

pytest_plugins = ["tests.s3_server"]


def _names(config: Config) -> list[tuple[str, int]]:
    con = connect(config.store.data_dir, config)
    return [
        (r["name"], r["n"])
        for r in fetch(con, "SELECT name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1").to_pylist()
    ]


def _span_files(s3: S3) -> list[str]:
    return [k for k in s3.object_keys() if "/spans/date=" in k and k.endswith(".parquet")]


def test_table_limit_deletes_old_partitions_and_vacuum_removes_their_files(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")
    location = table_location(config.store)
    for days_ago in (40, 31, 29, 0):
        _spans(config.store, days_ago, None)
    retention = RetentionConfig(tables={"spans": 30})
    planned = apply_delta_retention(location, retention, now=NOW, dry_run=True)
    assert [(r.partition, r.files_deleted) for r in planned] == [("date=2026-10-22", 1), ("date=2026-10-31", 1)]
    assert len(_names(config)) == 4, "a dry run deletes nothing"
    done = apply_delta_retention(location, retention, now=NOW)
    assert done == planned
    assert _names(config) == [("None-0", 3), ("None-29", 3)]
    assert len(_span_files(s3)) == 4, "files stay for readers of older snapshots until vacuum"
    assert apply_delta_retention(location, retention, now=NOW) == [], "nothing left to do"
    assert apply_delta_retention(location, RetentionConfig(), now=NOW) == [], "0 days keeps everything"
    compact_tables(location, grace_s=0)
    assert not [k for k in _span_files(s3) if "2026-10-22" in k or "2026-10-31" in k]
    assert _names(config) == [("None-0", 3), ("None-29", 3)]


def test_per_project_limits_rewrite_mixed_files_and_keep_the_rest(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")
    _spans(config.store, 10, "short")
    _spans(config.store, 10, "long")
    _mixed_file(config.store, NOW - timedelta(days=10))
    _spans(config.store, 3, "short")
    retention = RetentionConfig(projects={"short": 7}, project_tables={"long:spans": 5})
    results = apply_delta_retention(table_location(config.store), retention, now=NOW)
    assert [(r.partition, r.files_deleted, r.files_rewritten, r.projects) for r in results] == [
        ("date=2026-11-21", 2, 1, ("long", "short"))
    ]
    assert _names(config) == [("mixed-none", 1), ("short-3", 3)]


def test_cli_retention_apply_and_compact_every_apply_it(
    tmp_path: Path, s3: S3, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = s3.config(tmp_path / "state")
    now = datetime.now(UTC)
    _spans(config.store, 400, "old", now=now)
    _spans(config.store, 2, "new", now=now)
    toml = tmp_path / "vigil.toml"
    toml.write_text("[retention]\ndefault_days = 365\n")
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    args = ["retention", "apply", "--data-dir", str(tmp_path / "state"), "--config", str(toml)]
    with pytest.raises(SystemExit):
        main([*args, "--dry-run"])
    assert "would delete 1 files" in capsys.readouterr().out
    assert len(_names(config)) == 2

    # the one scheduled job: compaction + vacuum, and retention every retention.interval_s
    toml.write_text("[retention]\ndefault_days = 1\ninterval_s = 0.1\n[store]\ncompaction_grace_s = 0\n")
    command = [sys.executable, "-m", "vigil", "compact", "--every", "0.2", "--data-dir", str(tmp_path / "state")]
    job = subprocess.Popen(
        [*command, "--config", str(toml)], env=os.environ | s3.env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(lambda: _names(config), lambda names: names == [], timeout_s=60) == []
        assert wait_for(lambda: _span_files(s3), lambda files: not files, timeout_s=60) == []  # vacuumed
    finally:
        job.terminate()
        out, _ = job.communicate(timeout=30)
    assert "retention spans/date=" in out


def test_up_and_the_dashboards_find_the_tables_in_the_bucket(tmp_path: Path, s3: S3) -> None:
    """`vigil up` loads its demo only into an empty store, and the dashboards show pages for stored tables."""
    config = s3.config(tmp_path / "state")
    location = table_location(config.store)
    assert not store_has_spans(tmp_path / "state", location) and stored_tables(location) == ()
    _spans(config.store, 40, None)
    assert store_has_spans(tmp_path / "state", location) and stored_tables(location) == ("spans",)
    assert not store_has_spans(tmp_path / "state"), "without the location: the local folder, which has none"
    apply_delta_retention(location, RetentionConfig(default_days=30), now=NOW)
    assert not store_has_spans(tmp_path / "state", location), "every span deleted: empty again"
