"""What the collector and its decode workers hand each other, in shared memory when it can.

Why: a worker's result (~1.3 MB of Arrow IPC per 512-span request of 1 KiB content) sent back
through the executor's pipe was pickled, written in 64 KiB pieces, read and unpickled again: ~2.4 ms
of the collector's CPU per request, ~5 µs per span, more than its Parquet write of the same rows.
Written into a file in /dev/shm instead, it is mapped by the collector and read in place, with no
copy on the collector's side; the file is unlinked as soon as it is mapped, so its memory goes
when the table does. The request going the other way (`share_bytes`, ~0.8 MB) is a file too: the
worker reads it in one call and unlinks it, where reading it from the pipe and unpickling cost
2-3 µs of the worker's CPU per span, 1 with the file.

`SharedFolder` is the collector's folder for them, made at start and removed at close; one left
by a collector that was killed is removed by the next. Where a file cannot be written there (no
/dev/shm, or a small one that is full) the bytes go through the pipe as before.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

logger = logging.getLogger(__name__)

_PREFIX = "vigil-decode-"
_names = itertools.count()


class SharedTable(NamedTuple):
    """An Arrow IPC stream of `size` bytes in the file at `path`, for the collector to map."""

    path: str
    size: int


def to_ipc(table: pa.Table, folder: str | None = None) -> bytearray | SharedTable:
    """The table as an Arrow IPC stream, written once into memory of its exact size: a growing
    stream buffer plus a copy out of it cost 3-4x as much for large tables (each fresh block is
    mapped and faulted in; see collector.memory), and held the table three times at the peak.
    With `folder`, that memory is a new file there (see the module doc)."""
    size = pa.MockOutputStream()
    with pa.ipc.new_stream(size, table.schema) as writer:
        writer.write_table(table)
    nbytes = size.size()
    if folder is not None:
        path = Path(folder) / f"{os.getpid()}-{next(_names)}.arrow"
        try:
            _write_shared(path, nbytes, lambda fd: _map_table(table, fd, nbytes))
            return SharedTable(str(path), nbytes)
        except OSError as exc:  # full, gone: the pipe still works
            logger.debug("decoded table through the pipe: %s", exc)
    out = bytearray(nbytes)
    _write(table, pa.py_buffer(out))
    return out


def _write(table: pa.Table, memory: pa.Buffer) -> None:
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(memory), table.schema) as writer:
        writer.write_table(table)


def _write_shared(path: Path, nbytes: int, fill: Callable[[int], object]) -> None:
    """A new file of `nbytes` at `path`, filled by `fill(fd)`; nothing is left there if that fails."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # posix_fallocate, not ftruncate: a full tmpfs then fails here, not with SIGBUS mid-write.
        os.posix_fallocate(fd, 0, nbytes)
        fill(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _map_table(table: pa.Table, fd: int, nbytes: int) -> None:
    with mmap.mmap(fd, nbytes) as memory:
        _write(table, pa.py_buffer(memory))


def _write_bytes(data: bytes, fd: int) -> None:
    """os.write, not a mapping: faulting the pages in through a mapping took ~0.6 µs per span more."""
    view, written = memoryview(data), 0
    while written < len(data):
        written += os.write(fd, view[written:])


class SharedBytes(NamedTuple):
    """`size` bytes in the file at `path`, for a decode worker to read and unlink (`take_bytes`)."""

    path: str
    size: int


def share_bytes(data: bytes, folder: str | None) -> bytes | SharedBytes:
    """`data` in a new file in `folder`, or `data` itself when there is no folder or it is full."""
    if folder is None or not data:  # an empty request (valid protobuf): posix_fallocate refuses 0 bytes
        return data
    path = Path(folder) / f"in-{next(_names)}"
    try:
        _write_shared(path, len(data), lambda fd: _write_bytes(data, fd))
    except OSError as exc:
        logger.debug("request through the pipe: %s", exc)
        return data
    return SharedBytes(str(path), len(data))


def take_bytes(data: bytes | SharedBytes) -> bytes:
    if not isinstance(data, SharedBytes):
        return data
    with open(data.path, "rb") as handle:
        os.unlink(data.path)
        return handle.read(data.size)


def discard(data: bytes | SharedBytes) -> None:
    """The file of a hand-off no worker took (the pool was replaced, or the worker died first)."""
    if isinstance(data, SharedBytes):
        Path(data.path).unlink(missing_ok=True)


def from_ipc(data: bytes | bytearray | SharedTable) -> pa.Table:
    if isinstance(data, SharedTable):
        source = pa.memory_map(data.path)
        os.unlink(data.path)  # the mapping keeps the memory until the table goes
        return pa.ipc.open_stream(source).read_all()
    return pa.ipc.open_stream(data).read_all()


class SharedFolder:
    """The collector's folder under /dev/shm for its workers' tables; `path` is None without one."""

    def __init__(self, root: Path = Path("/dev/shm")) -> None:
        self.path: str | None = None
        if not root.is_dir() or not os.access(root, os.W_OK):
            return
        _remove_orphans(root)
        folder = root / f"{_PREFIX}{os.getpid()}"
        try:
            shutil.rmtree(folder, ignore_errors=True)  # this pid's, from a collector that had it before
            folder.mkdir(mode=0o700)
        except OSError as exc:
            logger.warning("decoded tables go through pipes: cannot make %s: %s", folder, exc)
            return
        self.path = str(folder)

    def close(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def _remove_orphans(root: Path) -> None:
    """Folders of collectors that are gone (killed before they could remove their own)."""
    for folder in root.glob(f"{_PREFIX}*"):
        pid = folder.name.removeprefix(_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True
