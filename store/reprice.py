"""Recompute the cost columns of stored LLM calls after prices change (`vigil reprice`).

Comes in: a store root and a `Pricer` built from the current table and price file. Goes out:
every `llm_calls` Parquet file that existed when the run started, rewritten in place with fresh
`cost_usd`, `cost_source` and `price_model` (a cost the instrumentation reported is kept), and a
summary. Must not: let a reader see a half-written, missing or doubled file. Each file is
written beside the old one under a hidden temporary name, fsynced, then `os.replace`d over the
same path: a query that already opened the old file keeps reading its inode, the next one sees
the new file. A file whose costs did not change is left alone.

On a Delta store (`[store] uri`) each day of `llm_calls` is rewritten in one commit instead
(store.delta_rewrite): a day that a collector or compaction changed meanwhile is read again.

Files the collector writes during the run are priced on ingest and not touched. Compaction
merging a file while it is rewritten may keep the old costs in the merged file: run reprice
when no compaction is due, or again afterwards.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from store.location import Destination, as_location
from store.pricing import Pricer, changed_rows
from store.writer import replace_file, table_dir


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


def reprice_store(
    root: Destination, pricer: Pricer, progress: Callable[[int, int], None] | None = None
) -> RepriceSummary:
    """Local files one by one; on a Delta store (`[store] uri`) day by day, each day one commit
    (store.delta_rewrite), `files` and `rewritten` then counting days."""
    location = as_location(root)
    if location.is_delta:
        from store.delta_rewrite import rewrite_partitions

        summary = RepriceSummary()
        summary.files, summary.rewritten = rewrite_partitions(
            location, "llm_calls", lambda rows: reprice_rows(rows, pricer, summary), progress
        )
        return summary
    files = sorted(table_dir(location.root, "llm_calls").glob("date=*/*.parquet"))
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
    summary.files += 1
    after = reprice_rows(before, pricer, summary)
    if after is None or not replace_file(path, after, "reprice"):
        return False
    summary.rewritten += 1
    return True


def reprice_rows(before: pa.Table, pricer: Pricer, summary: RepriceSummary) -> pa.Table | None:
    """The calls repriced, counted into `summary`; None when no cost changed."""
    after = pricer.price_table(before)
    changed = changed_rows(before, after)
    summary.calls += after.num_rows
    summary.changed += changed
    summary.by_source.update(after["cost_source"].to_pylist())
    return after if changed else None
