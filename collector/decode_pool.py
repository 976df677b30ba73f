"""Decoding off the collector's main process, so normalization runs on every core.

Comes in: WAL record payloads (bytes) with their record kind. Goes out: futures of the decoded
tables, LLM calls priced (`store.pricing`), as Arrow IPC in shared memory (no pickling of rows;
see `collector.shared_tables`, which hands the payloads to the workers the same way). Parsing,
normalizing and pricing run in worker processes because that Python work, not I/O, sets the
ingest ceiling, and one process only ever gets one core's worth of it; pricing there also keeps
its per-row loop from holding the GIL of the process that acknowledges. With `workers=0`
everything runs inline in the calling thread (tests, tiny machines).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector import memory
from collector import quality as quality_rules
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
from collector.signals import SIGNALS, TRACES
from store.config import QualityConfig
from store.pricing import Pricer

logger = logging.getLogger(__name__)

# A worker process's own, set when it starts (see _start_worker); None in the collector's process.
_worker_pricer: Pricer | None = None
_worker_folder: str | None = None  # where it writes decoded tables (collector.shared_tables)
GC_THRESHOLD = 10_000  # a worker's first-generation threshold (see _quiet_gc)


def decode_payload(
    kind: int, payload: bytes | SharedBytes, received_at_ns: int, pricer: Pricer | None = None
) -> dict[str, bytearray | SharedTable]:
    """Parse, decode and price one request; tables come back as Arrow IPC streams (empty ones left
    out), in shared memory when a worker decoded them."""
    tables = SIGNALS[kind].decode_serialized(take_bytes(payload), received_at_ns)
    pricer = pricer or _worker_pricer
    if pricer is not None and "llm_calls" in tables:
        tables["llm_calls"] = price_calls(pricer, tables["llm_calls"])
    return {name: to_ipc(table, _worker_folder) for name, table in tables.items() if table.num_rows}


def price_calls(pricer: Pricer, calls: pa.Table) -> pa.Table:
    """One model lookup per model in the request, a few µs per call after that."""
    try:
        return pricer.price_table(calls)
    except Exception:  # costs can be recomputed (`vigil reprice`), rows cannot: keep them
        logger.exception("pricing failed: %d calls stored without cost", calls.num_rows)
        return calls


def _start_worker(parent_pid: int, pricer: Pricer | None, quality: QualityConfig | None, folder: str | None) -> None:
    global _worker_pricer, _worker_folder
    memory.limit_retention()
    memory.without_pandas()
    _worker_pricer, _worker_folder = pricer, folder
    quality_rules.configure(quality)  # the [quality] rules the normalizer applies in this process
    _exit_with_parent(parent_pid)
    _ready()
    _quiet_gc()


def _quiet_gc() -> None:
    """Decoding frees nearly all it allocates by reference count, yet at the default threshold (700 net
    allocations) the cycle collector ran every ~80 spans (273 times per 24k spans), walking pyarrow's,
    protobuf's and the price table's objects each time: ~2 µs per span, 4% of a worker. The imports'
    objects are frozen out of its reach, and it runs after 10,000 net allocations: ~0.02 µs per span."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _exit_with_parent(parent_pid: int) -> None:
    """A collector killed with SIGKILL cannot stop its workers: they stop themselves.

    Ctrl-C reaches the whole process group; workers leave it to the collector, which shuts the
    pool down in order (a worker interrupted mid-task would only print a traceback).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _ready() -> bool:
    """Decode one tiny request, so the imports a first decode pulls in happen before traffic does."""
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="warm-up")
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    tables = decode_payload(TRACES.wal_kind, request.SerializeToString(), 0)
    return all(from_ipc(data).num_rows for data in tables.values())  # read back: no file left behind


class DecodePool:
    def __init__(self, workers: int, pricer: Pricer | None = None, quality: QualityConfig | None = None) -> None:
        self.workers = workers
        self.pricer = pricer
        self.quality = quality
        quality_rules.configure(quality)  # for inline decoding, and the fallback when a worker dies
        # In this process too: its first `pa.array` imports pandas (about a second holding the
        # GIL), which would otherwise stall the Export handlers at the first flush under load.
        _ready()
        self._folder = SharedFolder() if workers > 0 else None
        self._generation = 0  # which executor a future came from: a restart replaces it
        self._generations: weakref.WeakKeyDictionary[Future, int] = weakref.WeakKeyDictionary()
        self._executor = self._start() if workers > 0 else None

    def _start(self) -> ProcessPoolExecutor:
        # spawn: forking a process that runs gRPC threads is unsafe, and workers that are our own
        # children can notice when we are gone (see _exit_with_parent).
        memory.choose_arrow_pool()  # the workers inherit it, whatever this process imported first
        executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            # A Pricer pickles as its price file's path.
            initargs=(os.getpid(), self.pricer, self.quality, self._folder.path if self._folder else None),
        )
        # Start every worker now, not on the first request: that one would wait seconds for it. Each
        # has warmed up in its initializer (_start_worker) before it takes a task.
        for future in [executor.submit(os.getpid) for _ in range(self.workers)]:
            future.result()
        return executor

    @property
    def broken(self) -> bool:
        """A worker died: ProcessPoolExecutor's own flag, or a worker process that is gone (killed while
        it wrote a result, it leaves the executor waiting for the rest of it for ever)."""
        executor = self._executor
        if executor is None:
            return False
        if getattr(executor, "_broken", False):
            return True
        processes = dict(getattr(executor, "_processes", None) or {})  # a copy: the executor's thread edits it
        return any(not process.is_alive() for process in processes.values())

    def orphaned(self, future: Future) -> bool:
        """Can `future` no longer finish? Its pool is broken or was replaced since. (A submit racing
        with a worker's death can leave a future that ProcessPoolExecutor never completes.)"""
        return self.broken or self._generations.get(future, self._generation) != self._generation

    def restart(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._generation += 1
            self._executor = self._start()

    def submit(self, kind: int, payload: bytes, received_at_ns: int) -> Future[dict[str, bytearray | SharedTable]]:
        """Never raises for a dead worker: the future fails with BrokenProcessPool instead, and
        whoever collects it restarts the pool (`broken`, `restart`) and decodes it itself."""
        future: Future[dict[str, bytearray | SharedTable]] = Future()
        if self._executor is not None:
            generation = self._generation
            shared = share_bytes(payload, self._folder.path if self._folder else None)
            try:
                future = self._executor.submit(decode_payload, kind, shared, received_at_ns)
            except (BrokenProcessPool, RuntimeError) as exc:  # dead, or shut down by a restart under way
                future.set_exception(BrokenProcessPool(str(exc)))
            # Taken: the worker has unlinked it already. Not taken (cancelled, a worker died first): it goes now.
            future.add_done_callback(lambda _, shared=shared: discard(shared))
            self._generations[future] = generation
            return future
        try:
            future.set_result(decode_payload(kind, payload, received_at_ns, self.pricer))
        except Exception as exc:  # noqa: BLE001 - handed to the caller like a worker's error
            future.set_exception(exc)
        return future

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
        if self._folder is not None:
            self._folder.close()
