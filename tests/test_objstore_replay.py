"""The replay wing and verdicts on an S3 Delta store (moto on loopback): every write reaches the tables.

`vigil prompt push`, `replay sample`, `replay run`, `outcome` and `replay import` with `[store] uri` set
commit to the Delta tables (read back through the catalog's views and named queries), and write no
table under the local data dir, which holds only local state (the replay journal).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from deltalake import DeltaTable

from store.catalog import connect, fetch
from store.location import table_location
from store.queries import run
from store.schema import TABLES
from tests.llm_server import ScriptedLLM
from tests.replay_store import write_calls
from tests.test_replay_cli import vigil

pytest_plugins = ["tests.s3_server"]

if TYPE_CHECKING:
    from store.config import Config
    from tests.s3_server import S3


def _use(monkeypatch: pytest.MonkeyPatch, s3: S3) -> None:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)


def _delta_rows(config: Config, table: str) -> int:
    location = table_location(config.store)
    uri = location.table_uri(table)
    return DeltaTable(uri, storage_options=dict(location.storage_options)).to_pyarrow_table().num_rows


def test_push_sample_run_verdict_and_import_land_in_the_delta_tables(
    tmp_path: Path, s3: S3, s3_endpoint: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "state"
    config = s3.config(data)
    calls = write_calls(config.store, 4)
    _use(monkeypatch, s3)
    prompt = tmp_path / "v2.toml"
    prompt.write_text('template = "Reply kindly to: {question}"\n')
    args = ("--data-dir", str(data))
    assert vigil(capsys, "prompt", "push", "support-answer", "--version", "v2", str(prompt), *args)[0] == 0
    code, out = vigil(capsys, "prompt", "list", *args, "--format", "json")
    assert [(r["version"], r["source"]) for r in json.loads(out)] == [("v1", "traces"), ("v2", "registry")]
    code, out = vigil(capsys, "replay", "sample", *args, "-n", "4", "--set-id", "s1")
    assert code == 0 and "replay set s1: 4 calls" in out
    with ScriptedLLM() as server:
        code, out = vigil(
            capsys, "replay", "run", *args, "--set", "s1", "--prompt-version", "v2",
            "--base-url", server.base_url, "--run-id", "r1", "--format", "json",
        )  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "completed" and len(server.bodies) == 4
    assert vigil(capsys, "outcome", calls[1]["trace_id"], "success", *args)[0] == 0

    con = connect(data, config)
    assert [r["status"] for r in run(con, "replay_runs", run_id="r1").to_pylist()] == ["completed"]
    assert len(run(con, "replay_run_results", run_id="r1").to_pylist()) == 4
    assert fetch(con, "SELECT count(*) n FROM replay_sets WHERE set_id = 's1'").to_pylist() == [{"n": 4}]
    assert fetch(con, "SELECT outcome FROM outcomes").to_pylist() == [{"outcome": "success"}]
    for table, rows in {"prompts": 1, "replay_sets": 4, "replay_results": 4, "replay_runs": 2, "outcomes": 1}.items():
        assert _delta_rows(config, table) == rows, table
    assert not [t for t in TABLES if (data / t).exists()], "no table may be written under the local data dir"

    bundle = tmp_path / "r1.json.gz"
    assert vigil(capsys, "replay", "export", *args, "--run", "r1", "-o", str(bundle))[0] == 0
    other = dataclasses.replace(s3, bucket=s3.bucket + "-import")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=other.bucket)
    _use(monkeypatch, other)
    other_config = other.config(tmp_path / "other-state")
    assert vigil(capsys, "replay", "import", str(bundle), "--data-dir", str(tmp_path / "other-state"))[0] == 0
    there = connect(tmp_path / "other-state", other_config)
    for name in ("replay_runs", "replay_run_results"):
        assert run(there, name, run_id="r1").to_pylist() == run(con, name, run_id="r1").to_pylist(), name
    assert _delta_rows(other_config, "replay_results") == 4
