"""Acknowledged requests → normalized Parquet, off the request path.

Comes in: (WAL sequence number, request bytes) pairs from the Export handlers, and on start-up
the WAL records that were not yet written to Parquet. Decoding runs in worker processes
(`collector.decode_pool`, which also prices LLM calls); results are taken in WAL order. Goes out:
rows through a `store.location.TableSink` (Parquet files, or Delta commits on object storage), then a
WAL checkpoint. A record whose rows a table already holds (the sink's `committed()`: a Delta commit
made just before a crash, before the checkpoint) is not written to that table again on replay.
Must not: checkpoint a record before its rows are in committed files, or let memory grow with
load. What it holds is bounded in bytes: undecoded requests (queued or decoding) by
`max_queue_bytes`, decoded rows waiting for a flush by `max_buffer_bytes` (reaching it flushes
early; if flushes keep failing, `reserve` says no). When either is full the handler answers
RESOURCE_EXHAUSTED / 429 so the client retries later; the request was not logged, so nothing
acknowledged is at risk.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pyarrow as pa

from collector import memory
from collector.decode_pool import DecodePool, decode_payload
from collector.selfmetrics import Counters
from collector.shared_tables import SharedTable, from_ipc
from collector.signals import SIGNALS
from collector.wal import WalRecord, WriteAheadLog
from store.config import QualityConfig
from store.location import ParquetSink, TableSink
from store.pricing import Pricer

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
        pricer: Pricer | None = None,
        decode_workers: int = 0,
        quality: QualityConfig | None = None,
        sink: TableSink | None = None,
        max_buffer_bytes: int = 24 << 20,
    ) -> None:
        self.root = root
        self.sink = sink or ParquetSink(root)
        # Per table, the WAL sequence number up to which rows are stored (skipped when replayed).
        self._committed = self.sink.committed()
        self.wal = wal
        self.counters = counters
        self.max_queue_bytes = max_queue_bytes
        self.flush_interval_s = flush_interval_s
        self.flush_max_rows = flush_max_rows
        self.max_buffer_bytes = max_buffer_bytes
        self.pricer = pricer
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when queue or buffer bytes go down
        self._queued_bytes = 0
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered_rows: dict[str, int] = {}
        self._buffered_bytes = 0  # Arrow bytes of the decoded tables in `_buffers`
        self._flush_failed = False
        self._buffered_seq = 0
        self._pool = DecodePool(decode_workers, pricer, quality)
        self._max_in_flight = max(2, 2 * decode_workers)
        self._in_flight: deque[tuple[int, int, Future, int, bytes]] = deque()
        self._thread = threading.Thread(target=self._run, name="pipeline", daemon=True)

    def has_room(self, nbytes: int) -> bool:
        """Would `reserve(nbytes)` succeed right now? (A hint: only `reserve` claims the room.)"""
        queued = self._queued_bytes
        return self._buffer_has_room() and (not queued or queued + nbytes <= self.max_queue_bytes)

    def wait_for_room(self, nbytes: int, timeout_s: float) -> bool:
        """`has_room(nbytes)`, waiting up to `timeout_s` for it (a hint, like has_room)."""
        if self.has_room(nbytes):
            return True
        with self._room:
            return self._room.wait_for(lambda: self.has_room(nbytes), timeout_s)

    def reserve(self, nbytes: int, wait_s: float = 0.0) -> bool:
        """Claim room for a request about to be logged, waiting up to `wait_s` for it; False means
        'overloaded, retry later'. Waiting briefly is cheaper than a refusal at full load: room comes
        back with every decoded request, and a refused sender resends the whole body."""
        with self._room:
            if not self._room.wait_for(lambda: self.has_room(nbytes), wait_s):  # an empty queue admits any size
                return False
            self._queued_bytes += nbytes
        self.counters.add(queue_bytes=nbytes)
        return True

    def why_full(self) -> str:
        """What a refusal tells the client."""
        if not self._buffer_has_room():
            return f"decoded rows waiting for the Parquet writer ({self._buffered_bytes} bytes buffered)"
        return f"ingest queue full ({self._queued_bytes} bytes waiting)"

    def _buffer_has_room(self) -> bool:
        # Buffers past their limit are flushed at once; still past it means the flushes fail
        # (a full disk) or lag: take no more until they are written.
        return self._buffered_bytes < self.max_buffer_bytes

    def release(self, nbytes: int) -> None:
        with self._room:
            self._queued_bytes -= nbytes
            self._room.notify()  # one waiting request per request's room
        self.counters.add(queue_bytes=-nbytes)

    def submit(self, seq: int, kind: int, payload: bytes) -> None:
        """Queue a logged request (its bytes, as in the WAL); `reserve(len(payload))` came first.

        With decode workers its decode starts here, on the WAL's thread, not when the pipeline
        thread gets to it: that thread stops taking requests while it writes Parquet (~0.1 s per
        flush at full load), which left the workers idle ~15% of the time. Results are still taken
        in log order, and the queue's byte limit still bounds what is decoding or decoded."""
        future = self._pool.submit(kind, payload, time.time_ns()) if self._pool.workers and kind in SIGNALS else None
        self._queue.put((seq, kind, payload, len(payload), future))

    def replay(self, records: Iterable[WalRecord]) -> int:
        """Decode and write WAL records left over from the last run, before serving."""
        count = 0
        for record in records:
            self._start_decode(record.seq, record.kind, record.payload, 0, None)
            self._collect(block=len(self._in_flight) >= self._max_in_flight)
            if self._buffers_full():  # a long log is written as it goes, not gathered in memory
                self._flush()
            count += 1
        self._drain()
        self._flush()
        return count

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Drain everything queued, write it, checkpoint. Called after the server stopped."""
        self._queue.put(_STOP)
        self._thread.join()
        self._pool.close()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            # Wake up often while decodes are running, to collect them in order as they finish.
            timeout = max(deadline - time.monotonic(), 0)
            if self._in_flight:
                timeout = min(timeout, 0.01)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._drain()
                self._flush()
                return
            if item is not None:
                self._start_decode(*item)
            self._collect(block=len(self._in_flight) >= self._max_in_flight)
            # After a failed flush (disk full) the next try waits for the interval, full or not.
            if (self._buffers_full() and not self._flush_failed) or time.monotonic() >= deadline:
                self._flush()
                deadline = time.monotonic() + self.flush_interval_s

    def _buffers_full(self) -> bool:
        # Flushing at three quarters of the limit `reserve` refuses at: a flush that started at the
        # limit itself refused every Export while it ran (~0.1 s in every 0.7 s at full load), and
        # the senders' retries cost more CPU than the requests they resent.
        full_rows = any(rows >= self.flush_max_rows for rows in self._buffered_rows.values())
        return full_rows or self._buffered_bytes >= self.max_buffer_bytes * 3 // 4

    def _start_decode(self, seq: int, kind: int, payload: bytes, nbytes: int, future: Future | None) -> None:
        if kind not in SIGNALS:
            logger.error("wal record of unknown kind=%d seq=%d: skipped", kind, seq)
            self.release(nbytes)
            return
        if future is None:
            future = self._pool.submit(kind, payload, time.time_ns())
        self._in_flight.append((seq, nbytes, future, kind, payload))

    def _collect(self, block: bool = False) -> None:
        """Take finished decodes in WAL order (so the checkpoint never passes an unwritten record)."""
        while self._in_flight and (block or self._in_flight[0][2].done()):
            seq, nbytes, future, kind, payload = self._in_flight.popleft()
            block = False
            try:
                tables = {name: from_ipc(data) for name, data in self._result(future, kind, payload).items()}
            except Exception:  # a decoder bug must not stop ingestion, nor lose what was acknowledged
                path = self._quarantine(seq, kind, payload)
                logger.exception("decode failed seq=%d: request kept in %s for a fixed decoder", seq, path)
                self.counters.add(decode_errors=1)
                tables = {}
            for name, table in tables.items():
                if seq <= self._committed.get(name, 0):
                    continue  # already in this table (committed before a crash, not yet checkpointed)
                self._buffers.setdefault(name, []).append(table)
                self._buffered_rows[name] = self._buffered_rows.get(name, 0) + table.num_rows
                # Not `nbytes`: that walks every buffer to count shared ones once (~250 µs a request,
                # twice); each of these owns its buffers, so the plain sum is the same to within padding.
                self._buffered_bytes += table.get_total_buffer_size()
            self.counters.set(buffered_bytes=self._buffered_bytes)
            self.release(nbytes)  # after its rows are counted: so its bytes are always counted in one or the other
            self._buffered_seq = max(self._buffered_seq, seq)

    def _result(self, future: Future, kind: int, payload: bytes) -> dict[str, bytearray | SharedTable]:
        while future.done() or not self._pool.orphaned(future):
            try:
                return future.result(timeout=0.5)
            except FuturesTimeout:
                continue  # a long decode, or a death not noticed yet
            except (BrokenProcessPool, CancelledError):  # cancelled: queued in a pool a restart replaced
                break
        # A worker died (killed, out of memory): start new ones and decode this one here.
        if self._pool.broken:  # once per death, not once per request that was in flight
            logger.error("decode worker died; restarting the pool")
            self._pool.restart()
        return decode_payload(kind, payload, time.time_ns(), self.pricer)

    def _quarantine(self, seq: int, kind: int, payload: bytes) -> Path:
        """Keep the bytes of a request the decoder failed on (the checkpoint will pass it)."""
        folder = self.root / "quarantine"
        folder.mkdir(exist_ok=True)
        path = folder / f"{seq:020d}.kind{kind}.otlp"
        try:
            path.write_bytes(payload)
        except OSError:
            logger.exception("could not quarantine seq=%d", seq)
        return path

    def _drain(self) -> None:
        while self._in_flight:
            self._collect(block=True)

    def _flush(self) -> None:
        if not self._buffered_seq:
            return
        started = time.perf_counter()
        try:
            # `spans` last: a reader that sees a task already sees its LLM calls and messages.
            for name in sorted(self._buffers, key=lambda table: table == "spans"):
                parts = self._buffers[name]
                nbytes = sum(part.get_total_buffer_size() for part in parts)
                table = pa.concat_tables(parts)
                self.sink.write(name, table, self._buffered_seq)
                # Dropped table by table, so a failure part-way does not write the rest twice.
                del self._buffers[name]
                self._buffered_rows.pop(name, None)
                self._buffered_bytes -= nbytes
                self.counters.add(**{f"stored_{name}": table.num_rows})
                del table, parts  # the next table's flush need not hold this one's memory
        except OSError as exc:
            self.counters.add(flush_errors=1)
            logger.error("flush failed, will retry error=%s", exc)
            self.wal.release_spares()  # if the disk is full, the log's spare segments hold space
            self._flush_failed = True
            return
        try:
            self.wal.checkpoint(self._buffered_seq)
        except OSError as exc:
            # Fix: this escaped and ended the pipeline thread (disk full while writing the checkpoint
            # file), so nothing was flushed again until a restart. The rows are in Parquet; keeping
            # `_buffered_seq` retries the checkpoint at the next flush, and a crash before that only
            # replays rows the views dedupe.
            self.counters.add(flush_errors=1)
            logger.error("wal checkpoint failed, will retry error=%s", exc)
            self._flush_failed = True
            return
        self._buffered_seq = 0
        self._flush_failed = False
        with self._room:
            self._room.notify_all()
        self.counters.set(buffered_bytes=self._buffered_bytes)
        memory.trim()  # the flushed tables' heap pages, back to the kernel
        elapsed = (time.perf_counter() - started) * 1000
        self.counters.add(flushes=1)
        self.counters.set(last_flush_ms=elapsed)
