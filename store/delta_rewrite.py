"""Rewrite a Delta table day by day (`vigil reprice`, `vigil quality recompute` on a `[store] uri` store).

Comes in: a `TableLocation` with a uri, a table, and `rewrite(rows) -> rows | None` (None: nothing
changed). Goes out: each `date` partition whose rows changed replaced in one Delta commit
(`write_deltalake(mode="overwrite", predicate="date = 'D'")`), so a reader sees the day's old rows or
the new ones, never both or neither.
Must not: lose an append or double a row. The commit replaces the files of the snapshot the rows were
read from. If a collector appended to that day meanwhile, or compaction or retention replaced its files,
delta-rs refuses the commit (a conflict with the predicate it read), and the day is read again and
rewritten (tests/test_objstore_rewrite.py makes both races happen). A day that keeps changing faster
than it can be rewritten fails after a few tries with an error: run it again when ingest is quieter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError

from store.delta import PARTITION, DeltaStoreError, _open, delta_rows
from store.location import TableLocation
from store.schema import TABLES

logger = logging.getLogger(__name__)

_ATTEMPTS = 5


def rewrite_partitions(
    location: TableLocation,
    table: str,
    rewrite: Callable[[pa.Table], pa.Table | None],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """(partitions read, partitions rewritten) of `table`; (0, 0) when the table does not exist yet."""
    dt = _open(location, table)
    if dt is None:
        return 0, 0
    days = sorted({p[PARTITION] for p in dt.partitions()})
    rewritten = 0
    for done, day in enumerate(days, 1):
        rewritten += _rewrite_day(location, table, day, rewrite)
        if progress is not None:
            progress(done, len(days))
    return len(days), rewritten


def _rewrite_day(location: TableLocation, table: str, day: str, rewrite: Callable[[pa.Table], pa.Table | None]) -> bool:
    for attempt in range(1, _ATTEMPTS + 1):
        dt = _open(location, table)  # the newest snapshot: what is read is what the commit replaces
        rows = dt.to_pyarrow_dataset(file_pruning_predicate=[(PARTITION, "=", day)]).to_table()
        fresh = rewrite(_as_stored(rows.drop_columns([PARTITION]), table))
        if fresh is None:
            return False
        try:
            write_deltalake(
                dt, delta_rows(table, fresh), mode="overwrite", predicate=f"{PARTITION} = '{day}'",
                partition_by=[PARTITION], schema_mode="merge",
            )  # fmt: skip
            logger.info("delta rewrote table=%s date=%s rows=%d", table, day, fresh.num_rows)
            return True
        except CommitFailedError as exc:  # the day changed meanwhile (an append, a compaction): read it again
            if attempt == _ATTEMPTS:
                raise DeltaStoreError(f"rewriting {table} date={day} failed {attempt} times: {exc}") from exc
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _as_stored(rows: pa.Table, table: str) -> pa.Table:
    """The rows with the table's columns and types (a column the Delta table lacks yet reads as null)."""
    schema = TABLES[table]
    columns = [
        pc.cast(rows[f.name], f.type) if rows.schema.get_field_index(f.name) >= 0 else pa.nulls(rows.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
