"""Requests and decoded tables handed between the collector and its decode workers through shared memory.

A worker writes each table into its own file in the collector's folder under /dev/shm; the
collector maps it, unlinks it and reads the table in place, so no file outlives its table's
hand-off; requests go the other way as files the worker unlinks as it reads them, and one no worker
took is removed when its future ends. Where the folder cannot take the file, the bytes go through
the pipe as before. A folder left by a collector that was killed is removed by the next collector.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from collector.decode_pool import DecodePool
from collector.shared_tables import (
    SharedBytes,
    SharedFolder,
    SharedTable,
    discard,
    from_ipc,
    share_bytes,
    take_bytes,
    to_ipc,
)
from collector.signals import TRACES
from tests.test_full_disk import _span_request

TABLE = pa.table({"name": ["a", "b", None], "value": [1.5, None, 3.0]})


def test_a_table_goes_through_a_file_that_is_gone_once_read(tmp_path: Path) -> None:
    shared = to_ipc(TABLE, str(tmp_path))
    assert isinstance(shared, SharedTable) and Path(shared.path).parent == tmp_path
    assert Path(shared.path).stat().st_size == shared.size
    table = from_ipc(shared)
    assert not Path(shared.path).exists(), "unlinked once mapped"
    assert table.equals(TABLE)  # still readable: the mapping outlives the name


def test_without_a_usable_folder_the_bytes_go_through_the_pipe(tmp_path: Path) -> None:
    data = to_ipc(TABLE, str(tmp_path / "gone"))
    assert isinstance(data, bytearray)
    assert from_ipc(data).equals(TABLE)


def test_a_request_goes_to_a_worker_as_a_file_it_unlinks_as_it_reads(tmp_path: Path) -> None:
    shared = share_bytes(b"\x0a\x02request", str(tmp_path))
    assert isinstance(shared, SharedBytes) and Path(shared.path).read_bytes() == b"\x0a\x02request"
    assert take_bytes(shared) == b"\x0a\x02request"
    assert list(tmp_path.iterdir()) == []
    untaken = share_bytes(b"never decoded", str(tmp_path))  # its pool was replaced before a worker took it
    discard(untaken)
    assert list(tmp_path.iterdir()) == []
    discard(shared)  # taken already: nothing to do, no error


def test_a_request_that_cannot_be_written_goes_through_the_pipe(tmp_path: Path) -> None:
    assert share_bytes(b"request", None) == b"request"
    assert share_bytes(b"request", str(tmp_path / "gone")) == b"request"
    assert take_bytes(b"request") == b"request"


def test_folders_of_dead_collectors_are_removed_and_their_own_on_close(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"vigil-decode-{dead.stdout.strip()}"  # that pid has exited
    orphan.mkdir()
    (orphan / "1-0.arrow").write_bytes(b"left behind")
    living = tmp_path / f"vigil-decode-{os.getppid()}"  # a collector still running: not ours to remove
    living.mkdir()
    folder = SharedFolder(tmp_path)
    assert folder.path == str(tmp_path / f"vigil-decode-{os.getpid()}")
    assert not orphan.exists() and living.exists()
    folder.close()
    assert not (tmp_path / f"vigil-decode-{os.getpid()}").exists()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this machine")
def test_a_pool_hands_tables_over_in_shared_memory_and_leaves_no_file() -> None:
    request, _ = _span_request(1, blob_bytes=2_000)
    pool = DecodePool(2)
    try:
        folder = Path(pool._folder.path)  # noqa: SLF001 - where its workers write
        results = [pool.submit(TRACES.wal_kind, request.SerializeToString(), time.time_ns()) for _ in range(4)]
        handed = [future.result(timeout=30) for future in results]
        assert all(isinstance(data, SharedTable) for result in handed for data in result.values())
        tables = [from_ipc(data) for result in handed for data in result.values()]
        assert sum(table.num_rows for table in tables if "span_id" in table.column_names) >= 4
        assert list(folder.iterdir()) == []
    finally:
        pool.close()
    assert not folder.exists()
