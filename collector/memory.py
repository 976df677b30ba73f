"""Keep freed memory from piling up in the collector's processes.

The pipeline bounds what it holds in bytes (see `collector.pipeline`), but the allocators decide
what the processes keep: glibc raises its mmap threshold after each large free (so the next
multi-MB request body lands in a heap arena it rarely returns), gives every thread that mallocs
its own arena (up to 8 per core), and pyarrow's default mimalloc pool keeps freed pages for reuse.
Measured with 10 KiB spans under overload (`bench.ingest --content-bytes 10240`), that took the
main process to 780-830 MB RSS while the buffers themselves held well under 200 MB.

`limit_retention()` (once per process, before its threads start) caps the arenas, lowers the trim
threshold, fixes the mmap threshold at 4 MiB and puts Arrow on jemalloc with a short decay (or the
system allocator); `trim()` (after each flush) hands freed heap pages back to the kernel.
Arrow has two default pools: pyarrow's, which `limit_retention()` sets, and Arrow C++'s, which the
Parquet reader and writer use and which only ARROW_DEFAULT_MEMORY_POOL chooses, read once when
pyarrow is imported. Left at mimalloc, it kept a 1 GiB region with 45-70 MB resident in every
process that read or wrote Parquet (bench/README.md), so `choose_arrow_pool()` sets that variable
first thing in the `vigil` command and for the decode workers it spawns.
The mmap threshold: setting M_TRIM_THRESHOLD turns glibc's dynamic mmap threshold off (mallopt(3)),
which left it at 128 KiB, so every request body, IPC result and pickle (0.8-1.3 MB at 1 KiB spans)
was mapped and page-faulted in afresh: ~5 µs of kernel time per span in the main process alone.
At 4 MiB those come from the (capped, trimmed) arenas; 10 KiB spans' 5 MB bodies are still mapped.
Fixing it at 256 KiB instead cost 9-13% of throughput (bench/README.md).
`without_pandas()` is for processes that only run the collector (decode workers, `vigil collector`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
TRIM_THRESHOLD = 4 << 20
MMAP_THRESHOLD = 4 << 20
ARENA_MAX = 2
# Arrow's freed pages go back to the kernel within this time: at 0 every decode's buffers were
# faulted in afresh (~2-3 µs of kernel time per span in each decode worker).
JEMALLOC_DECAY_MS = 250


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


def choose_arrow_pool() -> None:
    """Put Arrow C++'s default pool on jemalloc in this process (call before pyarrow is imported) and the
    processes it starts; an ARROW_DEFAULT_MEMORY_POOL already set wins."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def limit_retention() -> None:
    """Make this process return freed memory to the kernel (call before starting threads)."""
    import pyarrow as pa  # here, not above: choose_arrow_pool() must be callable before pyarrow loads

    if _LIBC is not None:
        _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _LIBC.mallopt(_M_ARENA_MAX, ARENA_MAX)
    else:
        logger.info("not glibc: allocator limits not set, RSS may run above the ingest budget")
    # jemalloc with a short decay gives freed pages back soon; the system allocator with a fixed
    # mmap threshold cost ~35% more decode CPU (every growing Arrow buffer page-faulted anew).
    if "jemalloc" in pa.supported_memory_backends():
        # before the first call, pyarrow's default is Arrow C++'s, the Parquet reader's and writer's
        if (cpp_pool := pa.default_memory_pool().backend_name) != "jemalloc":
            logger.info("Arrow's Parquet pool is %s: ARROW_DEFAULT_MEMORY_POOL=jemalloc keeps RSS lower", cpp_pool)
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
    else:
        pa.set_memory_pool(pa.system_memory_pool())


def trim() -> None:
    """Give free heap pages back to the kernel (ctypes drops the GIL while it runs)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def without_pandas() -> None:
    """Run this process as if pandas were not installed (call only where nothing needs it).

    The first `pa.array` imports pandas if it can, only to ask whether its input is a pandas
    object: 1.5 s of CPU holding the GIL and ~40 MB of RSS per process. The collector never hands
    pyarrow (or DuckDB, in compaction) pandas objects, and both work without pandas.
    """
    if not any(isinstance(finder, _WithoutPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WithoutPandas())


class _WithoutPandas:
    """An import finder under which `import pandas` fails as if it were not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"no {name} in the vigil collector's processes", name=name)
        return None
