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


def test_obsolete_segments_are_recycled_and_their_old_records_never_replayed(tmp_path: Path) -> None:
    """Checkpointed segments become spares that later rotations write over from the start; what is
    left of their old records after the new ones must not come back on recovery."""
    wal = _open(tmp_path, segment_bytes=200)  # a few records per segment
    for i in range(12):
        wal.append(1, b"old-%02d" % i + b"x" * 60)
    wal.checkpoint(12)
    spares = sorted(tmp_path.glob("*.spare"))
    assert 1 <= len(spares) <= 2, "obsolete segments are kept as spares, at most two"
    spare_sizes = [spare.stat().st_size for spare in spares]
    inodes = {spare.stat().st_ino for spare in spares}
    # Records as long as the old ones: the third old record of the reused spare stays intact
    # behind the two new ones, CRC and all; its sequence number (below the segment's first, and
    # checkpointed) keeps it out.
    new = [b"new-%02d" % i + b"x" * 60 for i in range(2)]
    for payload in new:
        wal.append(1, payload)
    wal.close()  # no checkpoint: like a crash, the new records must be replayed
    reused = [segment for segment in tmp_path.glob("*.wal") if segment.stat().st_ino in inodes]
    assert reused, "the next rotation took a spare instead of a new file"
    assert reused[0].stat().st_size == max(spare_sizes) > 3 * len(new[0]), "written over, not truncated"
    reopened = WriteAheadLog(tmp_path)
    assert [(r.seq, r.payload) for r in reopened.recover()] == [(13, new[0]), (14, new[1])]
    reopened.start()
    assert reopened.append(1, b"after") == 15
    reopened.close()
    assert [r.seq for r in WriteAheadLog(tmp_path).recover()] == [13, 14, 15]


def test_spare_segments_are_given_up_when_a_write_fails(tmp_path: Path) -> None:
    """Spares hold disk space: a failed write (a full disk) deletes them so the retry can fit."""
    wal = _open(tmp_path, segment_bytes=100)
    for i in range(6):
        wal.append(1, b"x" * 90 + bytes([i]))
    wal.checkpoint(6)
    assert list(tmp_path.glob("*.spare"))
    assert wal.release_spares() >= 1
    assert not list(tmp_path.glob("*.spare"))
    assert wal.append(1, b"after") == 7  # rotation without a spare starts a new file
    wal.close()
    assert [r.seq for r in WriteAheadLog(tmp_path).recover()] == [7]
