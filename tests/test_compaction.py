"""Compaction: fewer files, no duplicates, and readers never see a missing or half-written file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from collector.server import Collector
from store.catalog import connect, fetch
from store.compaction import compact, delete_obsolete
from store.schema import SPANS_SCHEMA
from store.writer import write_partitioned
from tests.conftest import make_config, query, wait_for

DAY_NS = 86_400 * 10**9
BASE = 1_790_000_000 * 10**9


def _spans(start: int, count: int, day: int = 0) -> pa.Table:
    rows = [
        {
            "trace_id": f"{day:016x}{n:016x}",
            "span_id": f"{n:016x}",
            "name": "work",
            "start_time": BASE + day * DAY_NS + n,
            "end_time": BASE + day * DAY_NS + n + 1000,
            "duration_ms": 0.001,
            "received_at": BASE + n,
        }
        for n in range(start, start + count)
    ]
    return pa.Table.from_pylist(rows, SPANS_SCHEMA)


def _files(root: Path) -> list[Path]:
    return sorted((root / "spans").glob("date=*/*.parquet"))


def test_compaction_merges_and_dedupes_after_grace(tmp_path: Path) -> None:
    for batch in range(10):
        write_partitioned(tmp_path, "spans", _spans(batch * 10, 15))  # 5 rows overlap the next batch
        write_partitioned(tmp_path, "spans", _spans(batch * 10, 3, day=1))
    assert len(_files(tmp_path)) == 20
    assert query(tmp_path, "SELECT count(*) AS n FROM spans_raw") == [{"n": 150 + 30}]
    assert query(tmp_path, "SELECT count(*) AS n FROM spans") == [{"n": 105 + 30}]

    results = compact(tmp_path, min_files=8, grace_s=60)
    assert sorted((r.partition, r.files_in, r.rows_out) for r in results) == [
        ("date=2026-09-21", 10, 105),
        ("date=2026-09-22", 10, 30),
    ]
    # Within the grace period the replaced files are still there; the views hide the overlap.
    assert len(_files(tmp_path)) == 22
    assert query(tmp_path, "SELECT count(*) AS n FROM spans") == [{"n": 135}]

    assert delete_obsolete(tmp_path, now=time.time() + 61) == 20
    assert len(_files(tmp_path)) == 2
    assert query(tmp_path, "SELECT count(*) AS n FROM spans_raw") == [{"n": 135}], "no duplicate is left on disk"
    assert query(tmp_path, "SELECT count(*) AS n FROM spans") == [{"n": 135}]
    assert compact(tmp_path, min_files=2) == [], "a compacted partition is left alone"


def test_a_row_resent_after_its_compaction_stays_out_and_the_first_copy_wins(tmp_path: Path) -> None:
    for batch in range(8):
        write_partitioned(tmp_path, "spans", _spans(batch * 10, 10))
    assert [r.rows_out for r in compact(tmp_path, min_files=8, grace_s=0)] == [80]
    resent = _spans(70, 20)  # 70-79 were compacted above; 80-89 are new
    later = pa.array([BASE + 10**12] * 20, pa.int64())
    resent = resent.set_column(resent.schema.get_field_index("name"), "name", pa.array(["resent"] * 20))
    resent = resent.set_column(resent.schema.get_field_index("received_at"), "received_at", later)
    for part in range(8):  # and each new row twice within the batch, received later the second time
        write_partitioned(tmp_path, "spans", resent.slice(part % 2 * 10, 10) if part < 2 else _spans(90 + part, 1))
    write_partitioned(tmp_path, "spans", _spans(80, 10))

    assert sorted(r.rows_out for r in compact(tmp_path, min_files=8, grace_s=0)) == [16]  # 80-89, 92-97
    delete_obsolete(tmp_path, now=time.time() + 1)
    assert query(tmp_path, "SELECT count(*) AS n FROM spans_raw") == [{"n": 96}], "no row is stored twice"
    names = query(tmp_path, "SELECT name, count(*) AS n FROM spans_raw WHERE span_id >= '0000000000000046' GROUP BY 1")
    assert names == [{"name": "work", "n": 26}], "the copy received first is the one kept"


def test_readers_never_fail_or_miss_rows_while_compacting(tmp_path: Path) -> None:
    write_partitioned(tmp_path, "spans", _spans(0, 50))
    expected = {"rows": 50}
    errors: list[BaseException] = []
    wrong: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        con = connect(tmp_path)
        while not stop.is_set():
            floor = expected["rows"]  # committed before the query started: it must see at least these
            try:
                seen = fetch(con, "SELECT count(*) AS n FROM spans")["n"][0].as_py()
            except duckdb.Error as exc:
                errors.append(exc)
                return
            if seen < floor:
                wrong.append(seen)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(12):
            for i in range(4):
                start = 50 + (round_ * 4 + i) * 10
                write_partitioned(tmp_path, "spans", _spans(start, 10))
                expected["rows"] = start + 10
            compact(tmp_path, min_files=3, grace_s=1.0)
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join()
    delete_obsolete(tmp_path, now=time.time() + 2)
    assert errors == []
    assert wrong == [], "a reader saw fewer rows than were committed"
    assert query(tmp_path, "SELECT count(*) AS n FROM spans") == [{"n": expected["rows"]}]
    assert len(_files(tmp_path)) <= 3


def test_collector_compacts_in_the_background(tmp_path: Path) -> None:
    import grpc

    from tests.test_export_status import _export, _good_span, _request

    config = make_config(tmp_path / "data", flush_interval_s=0.05)
    config = config.__class__(
        collector=config.collector,
        store=config.store.__class__(
            data_dir=config.store.data_dir, compaction_interval_s=0.3, compaction_min_files=3, compaction_grace_s=0
        ),
    )
    with Collector(config) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            for n in range(8):
                _export(channel, _request(_good_span(n + 1)).SerializeToString())
                time.sleep(0.1)  # one flush, so one small file, per request
        wait_for(lambda: running.counters.get("compactions"), lambda n: n >= 2)
        assert running.counters.get("compactions") >= 2
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM spans") == [{"n": 8}]
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM llm_calls") == [{"n": 8}]
