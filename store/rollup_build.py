"""Write the rollups (store.rollups) of sealed dates: after compaction, in the collector and `vigil compact`.

Comes in: a store root and its config. Goes out: for every date D whose neighbourhood is sealed
(D + 1 day is before today, so the writer no longer adds files there unless data arrives late) and
whose rollup is missing or stale, the rows of `task_rows_live` and `llm_call_dimensions_live` that
started on D, computed from the files of D-1..D+1 only and committed like every store file (temp
file, fsync, rename), and the facts (store.rollups.FACTS) cut from the calls' rollup. A kind already
written under the date's current signature is kept (a rollup of a version before the facts gets only
those). Stale rollups of D are deleted after the new one is in place. A rollup written while its
inputs changed carries the old signature and is simply never used.

The collector builds rollups on its compaction thread, beside ingest, so DuckDB gets one thread and MEMORY_LIMIT
there, as in `vigil compact`. A neighbourhood bigger than SLICE_INPUT_BYTES of Parquet is computed a slice of trace
ids at a time (store.rollup_slices splits its files once), each slice reading about that much, and the slices'
rows, each sorted by trace_id, are copied into the date's file in order: one sorted file, as unsliced.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from store.catalog import connect, list_files, live_views, pin_listing
from store.config import Config
from store.rollup_slices import slice_bounds, split_file
from store.rollups import (
    ALL_KINDS,
    FACT_COLUMNS,
    FACTS,
    INPUT_TABLES,
    KINDS,
    PREFIX,
    REACH,
    ROLLUP_DIR,
    code_hash,
    drop_rollups,
    file_date,
    rollup_dir,
    signature,
    valid_rollups,
)
from store.writer import fsync_dir

logger = logging.getLogger(__name__)
MEMORY_LIMIT = "128MB"
SLICE_INPUT_BYTES = 16 << 20
MAX_SLICES = 4096
_SCRATCH = ".slices"  # under rollups/: the split files of the dates being built, removed after every build
# Sorted by trace_id, so a lookup by id reads one row group of each file; small groups keep that read small.
_ROW_GROUP = 16_384
# The facts are only ever scanned whole: DuckDB's default row groups, LZ4 (decodes faster than zstd; random doubles
# compress no better with it), sorted by model and operation, then latency: each file adds sorted runs to a
# percentile's values, which DuckDB selects from a third faster (at 10M calls, all time: 640 -> 450 ms CPU).
_FACTS_ORDER = "model, operation, duration_ms"


@dataclass(frozen=True)
class RollupResult:
    date: date
    tasks: int
    calls: int
    ms: float
    slices: int = 1


def build_rollups(
    root: Path,
    config: Config | None = None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    slice_input_bytes: int = SLICE_INPUT_BYTES,
) -> list[RollupResult]:
    """Build what is missing or stale among the sealed dates; drop rollups of dates with no data left."""
    today = today or datetime.now(UTC).date()
    root = root.resolve()
    listing = list_files(root)
    code = code_hash("\n".join(live_views(config or Config())))
    valid = valid_rollups(root, code, listing)
    dates = {file_date(p) for table in INPUT_TABLES for p in listing[table]} - {None}
    rolled = {file_date(p / "x") for kind in ALL_KINDS for p in rollup_dir(root, kind).glob("date=*")}
    drop_rollups(root, rolled - dates)
    todo = sorted(d for d in dates if d + REACH < today and d not in valid)
    if not todo:  # the common case in the collector's loop: no connection to open
        return []
    inputs = {day: _inputs(listing, day) for day in todo}
    sizes = {day: sum(os.path.getsize(p) for files in inputs[day].values() for p in files) for day in todo}
    scratch = Slices(root / ROLLUP_DIR / _SCRATCH, min(-(-max(sizes.values()) // slice_input_bytes), MAX_SLICES))
    try:
        results = []
        for done, day in enumerate(todo):
            sliced = scratch.of(inputs[day], config) if sizes[day] > slice_input_bytes else None
            # a connection per date (and per sliced kind): DuckDB keeps 100-150 MB of a big date's queries until
            # its connection closes, which the next date's split and queries would come on top of
            with _connect(root, config, root / ROLLUP_DIR / ".spill") as con:
                results.append(_build_date(con, root, listing, inputs[day], code, day, sliced))
            if progress:
                progress(done + 1, len(todo))
        return results
    finally:
        scratch.close()


def _connect(root: Path, config: Config | None, spill: Path) -> duckdb.DuckDBPyConnection:
    con = connect(root, config)
    # DuckDB spills beyond the limit (a slice's joins and sort, the facts' sort) into the store, not the process's cwd
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET threads = 1")
    con.execute("SET enable_progress_bar = false")  # a bar per COPY in the collector's log
    con.execute("SET temp_directory = ?", [str(spill)])
    return con


def _inputs(listing: dict[str, list[str]], day: date) -> dict[str, list[str]]:
    """The files a rollup of `day` reads: its neighbourhood's."""
    near = {day - REACH, day, day + REACH}
    return {t: [p for p in listing[t] if file_date(p) in near] for t in INPUT_TABLES}


@dataclass(frozen=True)
class Sliced:
    """A date's neighbourhood in slices: the split files' store and each slice's listing of them."""

    folder: Path
    config: Config | None
    listings: list[dict[str, list[str]]]

    def copy(self, sql: str, params: list, target: Path, options: str) -> None:
        """Write the rows of `sql` to `target` a slice at a time, each slice's in the order `sql` gives."""
        parts = [self.folder / f"part-{k}.parquet" for k in range(len(self.listings))]
        # connected after splitting (a table without files binds as empty), and closed after: see build_rollups
        try:
            with _connect(self.folder, self.config, self.folder / ".spill") as con:
                for part, files in zip(parts, self.listings, strict=True):
                    pin_listing(con, None, files)
                    con.execute(f"COPY ({sql}) TO '{_sql_path(part)}' (FORMAT parquet, COMPRESSION lz4)", params)
                # one thread reads the parts in the order listed: rows sorted by trace_id within slices stay sorted
                listed = ", ".join(f"'{_sql_path(part)}'" for part in parts)
                con.execute(f"COPY (FROM read_parquet([{listed}])) TO '{_sql_path(target)}' (FORMAT parquet{options})")
        finally:
            for part in parts:
                part.unlink(missing_ok=True)


class Slices:
    """The input files of the dates being built, split into `count` slices of trace ids under `folder`: each file
    once, however many of the dates built read it. A file no date left to build reads is deleted."""

    def __init__(self, folder: Path, count: int) -> None:
        self.folder, self.bounds = folder, slice_bounds(max(count, 1))
        self.split: dict[str, dict[int, Path]] = {}  # input file → its slices' files
        shutil.rmtree(folder, ignore_errors=True)  # a build that was killed

    def of(self, inputs: dict[str, list[str]], config: Config | None) -> Sliced:
        """The slices of `inputs`, split if they were not yet."""
        wanted = {p for files in inputs.values() for p in files}
        for path in set(self.split) - wanted:  # dates are built in order: an older date's files are done with
            for part in self.split.pop(path).values():
                part.unlink()
        for path in sorted(wanted - set(self.split)):
            self.split[path] = split_file(Path(path), self.bounds, self.folder)
        pa.default_memory_pool().release_unused()  # the split's batches: DuckDB's turn
        listings = [
            {t: [str(self.split[p][k]) for p in files if k in self.split[p]] for t, files in inputs.items()}
            for k in range(len(self.bounds) + 1)
        ]
        return Sliced(self.folder, config, listings)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _build_date(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    listing: dict[str, list[str]],
    inputs: dict[str, list[str]],
    code: str,
    day: date,
    sliced: Sliced | None,
) -> RollupResult:
    started = time.perf_counter()
    name = f"{PREFIX}{signature(code, listing, day)}.parquet"
    pin_listing(con, listing, inputs)
    rows = {}
    for kind, view in KINDS.items():
        query = f"SELECT * FROM {view} WHERE date = ?::DATE ORDER BY trace_id, start_time"
        options = f", COMPRESSION zstd, ROW_GROUP_SIZE {_ROW_GROUP}"
        rows[kind] = _write(rollup_dir(root, kind) / f"date={day}" / name, con, query, [day], options, sliced)
    calls = _sql_path(rollup_dir(root, "llm_calls") / f"date={day}" / name)
    facts = f"SELECT {', '.join(FACT_COLUMNS)} FROM read_parquet('{calls}') ORDER BY {_FACTS_ORDER}"
    _write(rollup_dir(root, FACTS) / f"date={day}" / name, con, facts, options=", COMPRESSION lz4")
    for kind in ALL_KINDS:  # stale ones: no query uses them any more (a query that listed one retries)
        for old in (rollup_dir(root, kind) / f"date={day}").glob(f"{PREFIX}*.parquet"):
            if old.name != name:
                old.unlink(missing_ok=True)
    ms = (time.perf_counter() - started) * 1000
    slices = 1 if sliced is None else len(sliced.listings)
    logger.info("rollup date=%s tasks=%d calls=%d slices=%d ms=%.0f", day, rows["tasks"], rows["llm_calls"], slices, ms)
    return RollupResult(day, rows["tasks"], rows["llm_calls"], ms, slices)


def _write(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None = None,
    options: str = "",
    sliced: Sliced | None = None,
) -> int:
    """Commit the rows of `sql` (computed slice by slice if `sliced`) as `path` (temp file, fsync, rename); one
    already there (a date whose other kinds were missing, or the facts added to an older rollup) is kept. Returns
    its rows."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        if sliced is None:
            con.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' (FORMAT parquet{options})", params)
        else:
            sliced.copy(sql, params or [], tmp, options)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    return con.execute(f"SELECT count(*) FROM read_parquet('{_sql_path(path)}')").fetchall()[0][0]


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
