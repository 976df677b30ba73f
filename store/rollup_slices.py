"""Cut a date's input files into slices of trace ids, for store.rollup_build.

Comes in: store files (`<table>/date=D/<name>.parquet`) and the bounds of the slices. Goes out: each file's rows
split by slice into `<scratch>/<table>/date=D/<name>-s<k>.parquet`, a store of its own that store.catalog reads
like any other. Every view a rollup computes joins within a trace, so a date's rollup is the union of its rollups
over the slices, each reading a slice's files only. Splitting reads a batch of rows at a time, so memory stays
small whatever the file; reading the whole neighbourhood once per slice instead would decode all its text once
per slice. The split files keep their input's name (a fresh `part-` file is still deduped, a `compacted-` one read
as it is) and its schema (a file of an older version keeps its columns).
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Read in batches of this many rows, whatever the size of the file's row groups: memory stays at a batch (and a row
# group's compressed pages).
_BATCH_ROWS = 8_192
_OPEN_WRITERS = 16
# A slice's rows are written in row groups of about this many bytes: groups of a batch's few rows would make footers
# (which every reader of the split files caches) hundreds of MB.
_GROUP_BYTES = 4 << 20
# trace ids compare as strings (as DuckDB compares them); the bounds are this many characters of hex
_BOUND_CHARS = 4


def slice_bounds(count: int) -> list[str]:
    """The count - 1 bounds that cut the trace ids into `count` ranges [bound k-1, bound k), even in size for hex ids
    (OTLP's); the first range is open below, the last above."""
    return [f"{i * 16**_BOUND_CHARS // count:0{_BOUND_CHARS}x}" for i in range(1, count)]


def split_file(path: Path, bounds: list[str], scratch: Path) -> dict[int, Path]:
    """Write the rows of `path` in slice k to `<scratch>/<table>/date=D/<name>-s<k>.parquet`; returns them by slice.
    An open Parquet writer holds about 5 MB, so the file is read again for every _OPEN_WRITERS slices."""
    folder = scratch / path.parent.parent.name / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, Path] = {}
    for first in range(0, len(bounds) + 1, _OPEN_WRITERS):
        written |= _split_pass(path, bounds, folder, range(first, min(first + _OPEN_WRITERS, len(bounds) + 1)))
    return written


def _split_pass(path: Path, bounds: list[str], folder: Path, wanted: range) -> dict[int, Path]:
    writers: dict[int, pq.ParquetWriter] = {}
    written: dict[int, Path] = {}
    pending: dict[int, list[pa.Table]] = {k: [] for k in wanted}
    pending_bytes = dict.fromkeys(wanted, 0)

    def flush(k: int) -> None:
        if k not in writers:
            written[k] = folder / f"{path.stem}-s{k:04d}.parquet"
            # LZ4: twice as fast to write as zstd, and the files live for one build; no statistics: nothing prunes
            writers[k] = pq.ParquetWriter(written[k], pending[k][0].schema, compression="lz4", write_statistics=False)
        writers[k].write_table(pa.concat_tables(pending[k]))
        pending[k], pending_bytes[k] = [], 0

    try:
        # no pre-buffering: it reads a whole row group ahead (hundreds of MB for compaction's older, larger groups)
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(_BATCH_ROWS, use_threads=False):
            slices = _slice_of_rows(batch.column("trace_id"), bounds)
            order = np.flatnonzero((slices >= wanted.start) & (slices < wanted.stop))
            order = order[np.argsort(slices[order], kind="stable")]
            table, slices = pa.Table.from_batches([batch]), slices[order]
            row_bytes = batch.nbytes / max(batch.num_rows, 1)
            starts = np.searchsorted(slices, np.arange(wanted.start, wanted.stop + 1))
            for k, start, stop in zip(wanted, starts, starts[1:], strict=False):
                if stop > start:
                    # a take of its own: a slice of one shared take would hold all of it until every slice flushed
                    pending[k].append(table.take(pa.array(order[start:stop])))
                    pending_bytes[k] += (stop - start) * row_bytes
                    if pending_bytes[k] >= _GROUP_BYTES:
                        flush(k)
        for k in wanted:
            if pending[k]:
                flush(k)
    finally:
        for writer in writers.values():
            writer.close()
    return written


def _slice_of_rows(trace_ids: pa.Array, bounds: list[str]) -> np.ndarray:
    """The slice of each row: its trace id's first characters looked up once per distinct prefix (a string is below
    a bound of that length exactly when its prefix of that length is)."""
    prefixes = pc.utf8_slice_codeunits(trace_ids.fill_null(""), 0, _BOUND_CHARS).dictionary_encode()
    lookup = np.array([bisect_right(bounds, p) for p in prefixes.dictionary.to_pylist()], dtype=np.int64)
    return lookup[prefixes.indices.to_numpy(zero_copy_only=False)]
