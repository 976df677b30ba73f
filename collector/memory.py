"""Keep freed memory from piling up in the collector's processes.

The pipeline bounds what it holds in bytes (see `collector.pipeline`), but the allocators decide
what the processes keep: glibc raises its mmap threshold after each large free (so the next
multi-MB request body lands in a heap arena it rarely returns), gives every thread that mallocs
its own arena (up to 8 per core), and pyarrow's mimalloc pool keeps freed pages for reuse.
Measured with 10 KiB spans under overload (`bench.ingest --content-bytes 10240`), that took the
main process to 780-830 MB RSS while the buffers themselves held well under 200 MB.

`limit_retention()` (once per process, before its threads start) fixes the mmap threshold, so
large blocks are mapped and unmapped on free, caps the arenas, and puts Arrow on the system
allocator; `trim()` (after each flush) hands freed heap pages back to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow as pa

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 256 << 10  # blocks this large get their own mapping, returned to the kernel on free
TRIM_THRESHOLD = 4 << 20
ARENA_MAX = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has neither mallopt nor malloc_trim)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_retention() -> None:
    """Make this process return freed memory to the kernel (call before starting threads)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        _LIBC.mallopt(_M_ARENA_MAX, ARENA_MAX)
    else:
        logger.info("not glibc: allocator limits not set, RSS may run above the ingest budget")
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def trim() -> None:
    """Give free heap pages back to the kernel (ctypes drops the GIL while it runs)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
