"""Delta Lake tables on a real S3-compatible server (moto on loopback): the same answers, exactly once.

- Every named query gives the same rows on a local Parquet store and on an S3 Delta store that the
  real collector filled with the same recordings.
- A WAL replayed after its records were already committed to Delta (a crash between the commit and
  the WAL checkpoint) adds nothing: the app transaction recorded with each commit says which records
  are stored, so even the raw Delta rows hold each span once.
- Compaction (optimize + vacuum) while readers query: every read sees every row once, and vacuum
  later deletes the replaced files without losing a row.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pandas as pd
import pytest
from deltalake import DeltaTable
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.server import Collector
from store.catalog import connect, fetch
from store.config import Config, ConfigError, load_config
from store.delta import compact_tables
from store.location import table_location
from store.queries import load, names, run
from tests.conftest import RECORDINGS, make_config, wait_for
from tests.otlp_json import load_recording
from tests.test_crash_recovery import EXPORT, build_request
from tests.test_query_pruning import _assert_same_rows

if TYPE_CHECKING:
    from tests.s3_server import S3

pytest_plugins = ["tests.s3_server"]  # the moto server and bucket fixtures

RECORDED = ("otel_v2", "openllmetry_events", "openinference")


def _send_recordings(config: Config) -> None:
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stubs = {"traces": TraceServiceStub(channel), "logs": LogsServiceStub(channel)}
        stubs["metrics"] = MetricsServiceStub(channel)
        for name in RECORDED:
            for signal, request in load_recording(RECORDINGS / f"{name}.jsonl"):
                stubs[signal].Export(request, timeout=10)
    # leaving the collector flushed every acknowledged request and checkpointed its log


def test_named_queries_answer_the_same_on_local_parquet_and_on_s3_delta(tmp_path: Path, s3: S3) -> None:
    local, remote = make_config(tmp_path / "local"), s3.config(tmp_path / "remote-state")
    _send_recordings(local)
    _send_recordings(remote)
    assert (
        any(key.endswith(".parquet") for key in s3.object_keys()) and not (tmp_path / "remote-state" / "spans").exists()
    )
    cons = connect(local.store.data_dir, local), connect(remote.store.data_dir, remote)
    trace_id = fetch(cons[0], "SELECT trace_id FROM tasks ORDER BY start_time LIMIT 1").to_pylist()[0]["trace_id"]
    checked = 0
    for name in names():
        params = {"trace_id": trace_id} if "$trace_id" in load(name) else {}
        expected, got = (_microseconds(run(con, name, **params).to_pylist()) for con in cons)
        _assert_same_rows(got, expected, name)
        checked += bool(expected)
    assert checked >= 15, "most queries must have rows to compare"
    counts = "SELECT (SELECT count(*) FROM spans) s, (SELECT count(*) FROM llm_calls) c, (SELECT count(*) FROM logs) l"
    assert fetch(cons[1], counts).to_pylist() == fetch(cons[0], counts).to_pylist()
    assert fetch(cons[1], "SELECT DISTINCT typeof(date) t FROM spans").to_pylist() == [{"t": "DATE"}]


def _microseconds(rows: list[dict]) -> list[dict]:
    """Delta stores timestamps in microseconds (its protocol has no nanoseconds); local Parquet keeps ns.

    So times are compared to the microsecond, and a difference of two times in ms (an offset, a gap) to 2 µs.
    """

    def value(column: str, v: object) -> object:
        if isinstance(v, pd.Timestamp):
            return v.floor("us")
        if isinstance(v, float) and column.endswith("_ms"):
            return round(v / 0.002) * 0.002
        return v

    return [{k: value(k, v) for k, v in row.items()} for row in rows]


def test_a_wal_replayed_after_its_delta_commit_adds_no_row(tmp_path: Path, s3: S3) -> None:
    """The state a crash between a Delta commit and the WAL checkpoint leaves, made for real."""
    config = s3.config(tmp_path / "state", flush_interval_s=600)  # nothing flushed while the snapshot is taken
    wal, saved = tmp_path / "state" / "wal", tmp_path / "wal-before-commit"
    sent: set[tuple[str, str]] = set()

    rng = random.Random(7)
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for number in range(30):
            payload, keys, _ = build_request(0, number, rng)
            export(payload, timeout=10)
            sent |= keys
        shutil.copytree(wal, saved)  # every acknowledged record, none checkpointed yet
    # The clean stop committed them to Delta (with app transactions) and checkpointed; now put the WAL
    # back as it was before the commit, as if the process had died right after it.
    shutil.rmtree(wal)
    shutil.copytree(saved, wal)
    with Collector(config):
        pass  # replays all 30 records; each table's txn version says they are stored
    spans = DeltaTable(f"{s3.uri}/spans", storage_options=dict(table_location(config.store).storage_options))
    raw = spans.to_pyarrow_table(columns=["trace_id", "span_id"]).to_pylist()
    assert len(raw) == len(sent) and {(r["trace_id"], r["span_id"]) for r in raw} == sent, "raw rows hold each once"
    con = connect(config.store.data_dir, config)
    assert fetch(con, "SELECT count(*) n FROM spans_raw").to_pylist() == [{"n": len(sent)}]
    txn = spans.transaction_version((wal / "instance-id").read_text())
    assert txn is not None and txn >= 30, "the commit carries the collector's WAL position"


def test_a_wiped_wal_gets_a_new_writer_id_so_its_records_are_not_skipped(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state")

    rng = random.Random(3)
    for run_number in range(2):
        with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for number in range(5):
                export(build_request(run_number, number, rng)[0], timeout=10)
        shutil.rmtree(tmp_path / "state" / "wal")  # sequence numbers start at 1 again
    con = connect(config.store.data_dir, config)
    assert fetch(con, "SELECT count(DISTINCT trace_id) n FROM spans").to_pylist() == [{"n": 10}]


def test_compaction_while_readers_query_keeps_every_row_visible_once(tmp_path: Path, s3: S3) -> None:
    config = s3.config(tmp_path / "state", flush_interval_s=0.05)

    rng = random.Random(11)
    total = 0
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for number in range(40):
            payload, keys, _ = build_request(0, number, rng)
            export(payload, timeout=10)
            total += len(keys)
            if number % 4 == 3:
                threading.Event().wait(0.1)  # let a flush happen: many small commits
    location = table_location(config.store)
    spans = DeltaTable(location.table_uri("spans"), storage_options=dict(location.storage_options))
    files_before = len(spans.file_uris())
    assert files_before >= 5, "the test needs small files to merge"
    stop, seen, errors = threading.Event(), [], []

    def read() -> None:
        con = connect(config.store.data_dir, config)
        while not stop.is_set():
            try:
                seen.append(fetch(con, "SELECT count(*) n, count(DISTINCT span_id) k FROM spans").to_pylist()[0])
            except Exception as exc:  # a failed read is what this test looks for
                errors.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:  # reads before, during and after: counted in reads, not seconds (a loaded machine reads slower)
        wait_for(lambda: len(seen), lambda n: n >= 3 or bool(errors), timeout_s=60)
        results = compact_tables(location, grace_s=3600)  # replaced files stay: readers may still list them
        after = len(seen)
        wait_for(lambda: len(seen), lambda n: n >= after + 3 or bool(errors), timeout_s=60)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=60)
    assert errors == []
    assert len(seen) > 4 and all(row == {"n": total, "k": total} for row in seen), seen[:5]
    by_table = {r.table: r for r in results}
    assert by_table["spans"].files_removed == files_before and by_table["spans"].files_vacuumed == 0
    spans.update_incremental()
    assert len(spans.file_uris()) < files_before
    parquet_before = sum(key.startswith("vigil/spans/") and key.endswith(".parquet") for key in s3.object_keys())
    vacuumed = {r.table: r for r in compact_tables(location, grace_s=0)}  # no reader left: delete replaced files
    assert vacuumed["spans"].files_vacuumed == files_before
    parquet_after = sum(key.startswith("vigil/spans/") and key.endswith(".parquet") for key in s3.object_keys())
    assert parquet_after == parquet_before - files_before
    con = connect(config.store.data_dir, config)
    assert fetch(con, "SELECT count(*) n FROM spans_raw").to_pylist() == [{"n": total}]


def test_a_missing_bucket_stops_start_up_with_what_to_check(tmp_path: Path, s3: S3) -> None:
    """Without knowing what the tables hold, replaying the WAL could store rows twice: refuse, say why."""
    config = s3.config(tmp_path / "state")
    store = dataclasses.replace(config.store, uri=f"s3://{s3.bucket}-missing/vigil")
    with (
        pytest.raises(ConfigError, match="Check that the bucket exists"),
        Collector(dataclasses.replace(config, store=store)),
    ):
        pass


@pytest.mark.parametrize("uri", ["gs://bucket/x", "/abs/path"])
def test_an_unsupported_store_uri_says_what_to_use(uri: str) -> None:
    with pytest.raises(ConfigError, match="s3://BUCKET/PREFIX"):
        load_config(env={"VIGIL_STORE_URI": uri})
