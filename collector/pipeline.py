"""Acknowledged requests → normalized Parquet, off the request path.

Comes in: (WAL sequence number, parsed request) pairs from the Export handlers, and on start-up
the WAL records that were not yet written to Parquet. Goes out: Parquet files through
`store.writer`, then a WAL checkpoint. Must not: checkpoint a record before its rows are in
committed files, or hold more than `max_queue_bytes` of requests in memory (`reserve` says no
first, and the handler answers RESOURCE_EXHAUSTED so the client retries later).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import pyarrow as pa
from google.protobuf.message import DecodeError, Message

from collector.selfmetrics import Counters
from collector.signals import SIGNALS
from collector.wal import WalRecord, WriteAheadLog
from store.writer import write_partitioned

logger = logging.getLogger(__name__)

_STOP = object()


class Pipeline:
    def __init__(
        self,
        root: Path,
        wal: WriteAheadLog,
        counters: Counters,
        max_queue_bytes: int,
        flush_interval_s: float,
        flush_max_rows: int,
    ) -> None:
        self.root = root
        self.wal = wal
        self.counters = counters
        self.max_queue_bytes = max_queue_bytes
        self.flush_interval_s = flush_interval_s
        self.flush_max_rows = flush_max_rows
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered_rows: dict[str, int] = {}
        self._buffered_seq = 0
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    def reserve(self, nbytes: int) -> bool:
        """Claim room for a request about to be logged; False means 'overloaded, retry later'."""
        with self._lock:
            # One request is always admitted on an empty queue, so no size can starve forever.
            if self._queued_bytes and self._queued_bytes + nbytes > self.max_queue_bytes:
                return False
            self._queued_bytes += nbytes
        self.counters.add(queue_bytes=nbytes)
        return True

    def release(self, nbytes: int) -> None:
        with self._lock:
            self._queued_bytes -= nbytes
        self.counters.add(queue_bytes=-nbytes)

    def submit(self, seq: int, kind: int, request: Message, nbytes: int) -> None:
        self._queue.put((seq, kind, request, nbytes))

    def replay(self, records: list[WalRecord]) -> int:
        """Decode and write WAL records left over from the last run, before serving."""
        replayed = 0
        for record in records:
            try:
                request = SIGNALS[record.kind].request_type.FromString(record.payload)
            except (KeyError, DecodeError):
                logger.error("wal record unreadable seq=%d kind=%d: skipped", record.seq, record.kind)
                continue
            self._consume(record.seq, record.kind, request)
            replayed += 1
        self._flush()
        return replayed

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Drain everything queued, write it, checkpoint. Called after the server stopped."""
        self._queue.put(_STOP)
        self._thread.join()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            timeout = max(deadline - time.monotonic(), 0)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush()
                return
            if item is not None:
                seq, kind, request, nbytes = item
                try:
                    self._consume(seq, kind, request)
                finally:
                    self.release(nbytes)
            full = any(rows >= self.flush_max_rows for rows in self._buffered_rows.values())
            if full or time.monotonic() >= deadline:
                self._flush()
                deadline = time.monotonic() + self.flush_interval_s

    def _consume(self, seq: int, kind: int, request: Message) -> None:
        try:
            tables = SIGNALS[kind].decode(request, time.time_ns())
        except Exception:  # a decoder bug must not stop ingestion; the WAL keeps the bytes
            logger.exception("decode failed seq=%d: request kept in the WAL, rows skipped", seq)
            return
        for name, table in tables.items():
            if table.num_rows:
                self._buffers.setdefault(name, []).append(table)
                self._buffered_rows[name] = self._buffered_rows.get(name, 0) + table.num_rows
        self._buffered_seq = max(self._buffered_seq, seq)

    def _flush(self) -> None:
        if not self._buffered_seq:
            return
        started = time.perf_counter()
        try:
            # `spans` last: a reader that sees a task already sees its LLM calls and messages.
            for name in sorted(self._buffers, key=lambda table: table == "spans"):
                table = pa.concat_tables(self._buffers[name])
                write_partitioned(self.root, name, table, tag=f"{self._buffered_seq:020d}")
                # Dropped table by table, so a failure part-way does not write the rest twice.
                del self._buffers[name]
                self._buffered_rows.pop(name, None)
                self.counters.add(**{f"stored_{name}": table.num_rows})
        except OSError as exc:
            self.counters.add(flush_errors=1)
            logger.error("flush failed, will retry error=%s", exc)
            return
        self.wal.checkpoint(self._buffered_seq)
        self._buffered_seq = 0
        elapsed = (time.perf_counter() - started) * 1000
        self.counters.add(flushes=1)
        self.counters.set(last_flush_ms=elapsed)
