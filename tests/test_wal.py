"""The write-ahead log on its own: group commit, recovery, torn tails, checkpoints."""

from __future__ import annotations

import threading
from pathlib import Path

from collector.wal import WriteAheadLog


def _open(path: Path, **kwargs) -> WriteAheadLog:
    wal = WriteAheadLog(path, **kwargs)
    list(wal.recover())
    wal.start()
    return wal


def test_appends_from_many_threads_are_all_recovered(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(50):
            seq = wal.append(1, f"{n}-{i}".encode())
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wal.close()
    assert sorted(seqs) == list(range(1, 401)), "every append gets its own sequence number"
    recovered = list(WriteAheadLog(tmp_path).recover())
    assert sorted(r.seq for r in recovered) == list(range(1, 401))
    assert {r.payload for r in recovered} == {f"{n}-{i}".encode() for n in range(8) for i in range(50)}


def test_torn_tail_is_cut_and_later_appends_continue(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    for i in range(3):
        wal.append(1, b"record-%d" % i)
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    intact = segment.stat().st_size
    with open(segment, "ab") as handle:  # a crash in the middle of writing a fourth record
        handle.write(b"\x04\x00\x00\x00\x00\x00\x00\x00\x99\x00")
    reopened = WriteAheadLog(tmp_path)
    assert [r.payload for r in reopened.recover()] == [b"record-0", b"record-1", b"record-2"]
    assert segment.stat().st_size == intact
    reopened.start()
    assert reopened.append(1, b"record-3") == 4
    reopened.close()
    assert [r.seq for r in WriteAheadLog(tmp_path).recover()] == [1, 2, 3, 4]


def test_checkpoint_hides_written_records_and_drops_old_segments(tmp_path: Path) -> None:
    wal = _open(tmp_path, segment_bytes=64)  # tiny segments: one or two records each
    for i in range(10):
        wal.append(1, b"x" * 40 + bytes([i]))
    segments_before = len(list(tmp_path.glob("*.wal")))
    wal.checkpoint(7)
    assert len(list(tmp_path.glob("*.wal"))) < segments_before
    wal.close()
    assert [r.seq for r in WriteAheadLog(tmp_path).recover()] == [8, 9, 10]


def test_corrupted_record_is_not_replayed(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append(1, b"good")
    wal.append(1, b"flipped")
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # a bit flip in the last payload byte fails its CRC
    segment.write_bytes(bytes(data))
    assert [r.payload for r in WriteAheadLog(tmp_path).recover()] == [b"good"]
