"""Recompute the cost columns of stored LLM calls after prices change (`vigil reprice`).

Comes in: a store root and a `Pricer` built from the current table and price file. Goes out:
every `llm_calls` Parquet file that existed when the run started, rewritten in place with fresh
`cost_usd`, `cost_source` and `price_model` (a cost the instrumentation reported is kept), and a
summary. Must not: let a reader see a half-written, missing or doubled file. Each file is
written beside the old one under a hidden temporary name, fsynced, then `os.replace`d over the
same path: a query that already opened the old file keeps reading its inode, the next one sees
the new file. A file whose costs did not change is left alone.

Files the collector writes during the run are priced on ingest and not touched. Compaction
merging a file while it is rewritten may keep the old costs in the merged file: run reprice
when no compaction is due, or again afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from store.pricing import Pricer, changed_rows
from store.writer import PARQUET_OPTIONS, fsync_dir, table_dir


@dataclass
class RepriceSummary:
    files: int = 0  # files looked at
    rewritten: int = 0  # files whose costs changed
    calls: int = 0
    changed: int = 0  # calls whose cost, source or price entry changed
    by_source: Counter = field(default_factory=Counter)  # cost_source → calls

    @property
    def unpriced(self) -> int:
        return self.by_source.get("unpriced", 0)


def reprice_store(root: Path, pricer: Pricer, progress: Callable[[int, int], None] | None = None) -> RepriceSummary:
    files = sorted(table_dir(root, "llm_calls").glob("date=*/*.parquet"))
    summary = RepriceSummary()
    for done, path in enumerate(files, 1):
        # A file compaction deleted after its grace period: its rows live in the merged file.
        with contextlib.suppress(FileNotFoundError):
            reprice_file(path, pricer, summary)
        if progress is not None:
            progress(done, len(files))
    return summary


def reprice_file(path: Path, pricer: Pricer, summary: RepriceSummary) -> bool:
    """Reprice one file; True when it was rewritten."""
    before = pq.read_table(path, partitioning=None)  # this file only: no `date` column from the path
    after = pricer.price_table(before)
    changed = changed_rows(before, after)
    summary.files += 1
    summary.calls += after.num_rows
    summary.changed += changed
    summary.by_source.update(after["cost_source"].to_pylist())
    if not changed:
        return False
    tmp = path.with_name(f".{path.name}.reprice.tmp")  # `.*.tmp`: cleaned up after a crash
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(after, sink, **PARQUET_OPTIONS)
            sink.flush()
            os.fsync(sink.fileno())
        if not path.exists():  # compaction deleted it meanwhile: do not bring it back
            return False
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    summary.rewritten += 1
    return True
