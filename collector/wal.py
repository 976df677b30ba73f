"""Write-ahead log: request bytes are durable on disk before the collector acknowledges them.

Comes in: raw OTLP request payloads from the handler threads. Goes out: a sequence number per
record once it is fsynced, and on start-up, the records not yet checkpointed (written to
Parquet) for replay. Must not: acknowledge anything that is not on disk.

Layout: `<dir>/<first_seq:020d>.wal` segments, each a run of records
`[seq u64][length u32][crc32 u32][kind u8][payload]`. Appends are group-committed: handler
threads queue their records, one flusher thread writes everything queued with one write and one
fsync, then wakes them all. A torn record at the tail (a crash mid-write) fails its CRC or
length check; it was never acknowledged, so recovery cuts the segment there.
`<dir>/checkpoint` holds the highest sequence number whose rows are safely in Parquet; segments
entirely at or below it are recycled: renamed to `<dir>/<random>.spare` (up to MAX_SPARES, the
rest deleted) and written over from the start when the log next rotates. Overwriting blocks a
file already owns makes each fsync a pure data flush, with no journal commit to wait for, and
nothing is deleted under load: deleting a 64 MiB segment (ext4 with online discard) stalled every
acknowledgement for 100-600 ms. A recycled segment's stale tail is told apart from records by
their sequence numbers, which only grow within a segment and start at its name. A failed write
(or Parquet flush) deletes the spares: a full disk needs that space more.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.selfmetrics import Histogram
from store.writer import fsync_dir

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<QIIB")
_SUFFIX = ".wal"
_SPARE = ".spare"
MAX_SPARES = 2
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)
# Seconds. Every acknowledgement waits for one sync, so this is the floor of the ack latency: a
# disk whose syncs stall shows here, not in the collector's CPU.
SYNC_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


OnDurable = Callable[[int], None]


class WalError(OSError):
    """The log could not be written (disk full, I/O error): nothing was acknowledged."""


@dataclass(frozen=True, slots=True)
class WalRecord:
    seq: int
    kind: int
    payload: bytes


class WriteAheadLog:
    def __init__(self, directory: Path, segment_bytes: int = 64 << 20, fsync: bool = True) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self.checkpoint_seq = self._read_checkpoint()
        self._cond = threading.Condition()
        # (seq, header, payload, callback): the payload is the caller's own object, never copied
        self._pending: list[tuple[int, bytes, bytes, OnDurable | None]] = []
        self._durable_seq = 0
        self._failed: dict[int, WalError] = {}
        self._closed = False
        self._next_seq = self.checkpoint_seq + 1
        self._segment_size = 0
        self._file = None
        self.bytes_written = 0
        self.last_error = ""  # why the last write failed; cleared by the next good one
        self.last_error_bytes = 0  # how much that write needed
        self._flusher: threading.Thread | None = None
        self._spare_lock = threading.Lock()  # the pipeline's checkpoints retire, the flusher takes
        self.sync_seconds = Histogram(SYNC_BUCKETS_S)  # each group commit's fdatasync

    # -- recovery ---------------------------------------------------------------------------

    def recover(self) -> Iterator[WalRecord]:
        """Yield records after the checkpoint, cutting torn tails; call once, before `start`."""
        last = self.checkpoint_seq
        for segment in self._segments():
            for record in self._read_segment(segment):
                last = max(last, record.seq)
                if record.seq > self.checkpoint_seq:
                    yield record
        self._next_seq = last + 1
        self._durable_seq = last

    def _read_segment(self, path: Path) -> Iterator[WalRecord]:
        data = path.read_bytes()
        offset, floor = 0, int(path.stem)
        while offset + _HEADER.size <= len(data):
            seq, length, crc, kind = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            payload = data[start : start + length]
            # A lower seq is a recycled segment's old content (gaps are fine: a failed write's seqs).
            if seq < floor or len(payload) != length or zlib.crc32(payload, kind) != crc:
                break
            yield WalRecord(seq, kind, payload)
            offset, floor = start + length, seq + 1
        if offset != len(data):
            logger.warning("wal torn or recycled tail cut segment=%s at=%d of=%d", path.name, offset, len(data))
            with open(path, "r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())

    # -- appending --------------------------------------------------------------------------

    def start(self) -> None:
        self._flusher = threading.Thread(target=self._flush_loop, name="wal-flusher", daemon=True)
        self._flusher.start()

    def append(self, kind: int, payload: bytes, on_durable: OnDurable | None = None) -> int:
        """Block until the record is fsynced; return its sequence number or raise WalError.

        `on_durable(seq)` runs on the flusher thread once the record is on disk, for every record
        in sequence order, before any appender wakes up: what is handed on that way arrives in
        log order, which the pipeline's checkpoint relies on.
        """
        with self._cond:
            if self._closed:
                raise WalError("write-ahead log is closed")
            seq = self._next_seq
            self._next_seq += 1
            header = _HEADER.pack(seq, len(payload), zlib.crc32(payload, kind), kind)
            self._pending.append((seq, header, payload, on_durable))
            self._cond.notify_all()
            while self._durable_seq < seq and seq not in self._failed:
                self._cond.wait()
            error = self._failed.pop(seq, None)
        if error is not None:
            raise error
        return seq

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
            parts = [part for _, header, payload, _ in batch for part in (header, payload)]
            error = self._write_batch(batch[0][0], parts)
            del parts
            if error is None:
                # Fix: appenders used to hand their records to the pipeline themselves, after waking
                # up, in whatever order the threads ran. Request 2 could reach the pipeline before
                # request 1, be flushed, and checkpoint 2: a crash then skipped the acknowledged
                # request 1 on replay. Handing on here, in sequence order, rules that out.
                for seq, _, _, on_durable in batch:
                    if on_durable is not None:
                        try:
                            on_durable(seq)
                        except Exception:  # never stop the flusher: every appender would hang
                            logger.exception("wal on_durable callback failed seq=%d", seq)
            with self._cond:
                if error is None:
                    self._durable_seq = batch[-1][0]
                else:
                    self._failed.update((seq, error) for seq, *_ in batch)
                self._cond.notify_all()
            del batch  # not kept alive (payloads and all) while waiting for the next one

    def _write_batch(self, first_seq: int, parts: list[bytes]) -> WalError | None:
        size = sum(map(len, parts))
        try:
            if self._file is None or self._segment_size >= self.segment_bytes:
                self._rotate(first_seq)
            assert self._file is not None
            start = self._file.tell()
            try:
                _write_all(self._file, parts)
                if self.fsync:
                    began = time.perf_counter()
                    os.fdatasync(self._file.fileno())
                    self.sync_seconds.observe(time.perf_counter() - began)
            except OSError:
                # Leave no partial record behind: the next batch must start on a clean boundary.
                self._cut_back(start)
                raise
            self._segment_size += size
            self.bytes_written += size
            self.last_error = ""
            self.last_error_bytes = 0
            return None
        except OSError as exc:
            logger.error("wal write failed bytes=%d error=%s", size, exc)
            self.release_spares()  # a full disk gets their space back before the client retries
            self.last_error = f"write-ahead log write failed: {exc.strerror or exc}"
            self.last_error_bytes = size
            return WalError(exc.errno, self.last_error)

    def _cut_back(self, offset: int) -> None:
        """Drop what a failed write left after `offset`; if that fails too, give up the segment."""
        assert self._file is not None
        try:
            self._file.truncate(offset)
            self._file.seek(offset)  # truncate does not move the position that `tell` reports
        except OSError:
            # Recovery stops reading a segment at its first bad record, so nothing may follow a
            # torn one: the next batch starts a new segment instead.
            logger.error("wal cannot cut a failed write segment=%s: starting a new one", self._file.name)
            self._file.close()
            self._file = None

    def _rotate(self, first_seq: int) -> None:
        if self._file is not None:
            self._file.close()
        path = self.directory / f"{first_seq:020d}{_SUFFIX}"
        recycled = self._take_spare(path)
        # Fix: unbuffered. A buffered file kept the bytes of a write that failed (disk full) in its
        # buffer, so the `seek` meant to cut them off raised again, the torn record stayed on disk,
        # the buffered rest was written out with the next batch, and close() raised.
        mode = "r+b" if recycled else "ab"  # a spare is written over from its start
        self._file = open(path, mode, buffering=0)  # noqa: SIM115 - lives as long as the segment
        self._segment_size = self._file.tell()
        fsync_dir(self.directory)

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint(self, seq: int) -> None:
        """Everything up to `seq` is in Parquet: remember that and drop obsolete segments."""
        if seq <= self.checkpoint_seq:
            return
        tmp = self.directory / "checkpoint.tmp"
        tmp.write_text(str(seq))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "checkpoint")
        self.checkpoint_seq = seq
        segments = self._segments()
        file = self._file  # read once: the flusher thread may drop or rotate it meanwhile
        current = Path(file.name) if file is not None else None
        for segment, following in zip(segments, segments[1:], strict=False):
            # A segment's last seq is one below the next segment's first.
            if int(following.stem) - 1 <= seq and segment != current:
                self._retire(segment)

    def _retire(self, segment: Path) -> None:
        """An obsolete segment becomes a spare for the next rotation, or is deleted if there are enough."""
        with self._spare_lock:
            if len(self._spares()) < MAX_SPARES:
                try:
                    segment.rename(self.directory / f"{uuid.uuid4().hex}{_SPARE}")
                    return
                except OSError:
                    pass
            segment.unlink(missing_ok=True)

    def _take_spare(self, path: Path) -> bool:
        """Rename a spare segment to `path` (its old records stay until overwritten); False if none."""
        with self._spare_lock:
            for spare in self._spares():
                try:
                    spare.rename(path)
                    return True
                except OSError:
                    continue
        return False

    def release_spares(self) -> int:
        """Delete the spare segments (a full disk needs their space more than we need reuse)."""
        with self._spare_lock:
            spares = self._spares()
            for spare in spares:
                spare.unlink(missing_ok=True)
        return len(spares)

    def _spares(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SPARE}"))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join()
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def disk_bytes(self) -> int:
        return sum(segment.stat().st_size for segment in self._segments())

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    def _read_checkpoint(self) -> int:
        try:
            return int((self.directory / "checkpoint").read_text().strip() or 0)
        except FileNotFoundError:
            return 0


def _write_all(file: BinaryIO, parts: list[bytes]) -> None:
    """Gathered writes of the records' headers and payloads as they are (joining them would copy
    every payload of the batch once more). A write may be short (the disk filled up part-way):
    write on until done or raised."""
    views = [memoryview(part) for part in parts if part]
    while views:
        written = os.writev(file.fileno(), views[:_IOV_MAX])
        while written and views:
            if written >= len(views[0]):
                written -= len(views.pop(0))
            else:
                views[0], written = views[0][written:], 0
