"""A decode worker process that dies (killed, out of memory) costs nothing that was acknowledged.

Decodes are handed to the workers as soon as the write-ahead log has a request, so several can be
in flight, or already queued in the pool, when a worker dies. Each of those fails with
BrokenProcessPool; the pipeline restarts the pool once, decodes them itself, and requests logged
after the death go to the new workers. Every acknowledged span is stored exactly once, in spans and
in the raw tables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from collector.server import Collector
from tests.conftest import make_config, query, wait_for
from tests.test_full_disk import _grpc_export, _span_request


def _decode_workers() -> set[int]:
    """This process's children that are multiprocessing workers (not the resource tracker)."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.add(int(pid))
    return pids


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


def test_a_killed_decode_worker_loses_nothing_acknowledged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    config = make_config(root, decode_workers=1)
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:

        def send(start: int, count: int) -> None:
            for number in range(start, start + count):
                request, key = _span_request(number, blob_bytes=200_000)  # decodes take a while
                if _grpc_export(channel, request) is None:
                    with lock:
                        acked.append(key)

        # 1. Killed while idle: the next requests are handed to a pool that is already broken.
        send(1, 3)
        wait_for(lambda: collector.pipeline.queued_bytes, lambda n: n == 0)
        (first,) = _decode_workers()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _gone(first), bool)
        send(10, 3)
        wait_for(lambda: collector.pipeline.queued_bytes, lambda n: n == 0)
        (second,) = wait_for(_decode_workers, lambda pids: len(pids) == 1 and first not in pids)

        # 2. Killed under load, with decodes in flight and queued in the pool.
        senders = [threading.Thread(target=send, args=(100 * (i + 1), 15)) for i in range(4)]
        for sender in senders:
            sender.start()
        wait_for(lambda: len(acked), lambda n: n >= 16)
        os.kill(second, signal.SIGKILL)
        for sender in senders:
            sender.join()
        assert len(acked) == 66, "every export was acknowledged despite the dead workers"
        wait_for(lambda: collector.pipeline.queued_bytes, lambda n: n == 0)
        assert len(wait_for(_decode_workers, lambda pids: len(pids - {first, second}) == 1)) == 1, "a new worker"
    restarts = [r for r in caplog.records if "decode worker died" in r.getMessage()]
    assert len(restarts) == 2, "one restart per death, not one per request that was in flight"
    raw = query(root, "SELECT trace_id, span_id, count(*) AS n FROM spans_raw GROUP BY ALL")
    assert {(row["trace_id"], row["span_id"]) for row in raw} == set(acked), "all of what was acknowledged"
    assert {row["n"] for row in raw} == {1}, "a span was stored twice"
    assert len(query(root, "SELECT * FROM llm_calls_raw")) == len(acked)


@pytest.mark.skipif("jemalloc" not in pa.supported_memory_backends(), reason="this pyarrow has no jemalloc")
def test_the_collectors_processes_put_arrows_parquet_pool_on_jemalloc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow C++'s default pool (the Parquet reader's and writer's) is chosen only by ARROW_DEFAULT_MEMORY_POOL when
    pyarrow loads; left at mimalloc it keeps freed pages (collector.memory). `vigil` sets it before pyarrow loads,
    and the decode pool for the workers it spawns, whatever the parent process loaded first."""
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    script = "import vigil, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout == "jemalloc\n"
    with Collector(make_config(tmp_path / "data", decode_workers=1)):
        (worker,) = wait_for(_decode_workers, lambda pids: len(pids) == 1)
        environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    assert b"ARROW_DEFAULT_MEMORY_POOL=jemalloc" in environ
