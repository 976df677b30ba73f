"""Write the rollups (store.rollups) of sealed dates: after compaction, in the collector and `vigil compact`.

Comes in: a store root and its config. Goes out: for every date D whose neighbourhood is sealed
(D + 1 day is before today, so the writer no longer adds files there unless data arrives late) and
whose rollup is missing or stale, the rows of `task_rows_live` and `llm_call_dimensions_live` that
started on D, computed from the files of D-1..D+1 only and committed like every store file (temp
file, fsync, rename), and the facts (store.rollups.FACTS) cut from the calls' rollup. A kind already
written under the date's current signature is kept (a rollup of a version before the facts gets only
those). Stale rollups of D are deleted after the new one is in place. A rollup written while its
inputs changed carries the old signature and is simply never used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from store.catalog import connect, list_files, live_views, pin_listing
from store.config import Config
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


def build_rollups(
    root: Path,
    config: Config | None = None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
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
    con = connect(root, config)
    try:
        # DuckDB spills beyond the limit (a day's neighbourhood is bounded), into the store, not the process's cwd
        con.execute("SET memory_limit = '2GB'")
        con.execute("SET enable_progress_bar = false")  # a bar per COPY in the collector's log
        con.execute("SET temp_directory = ?", [str(root / ROLLUP_DIR / ".spill")])
        results = []
        for done, day in enumerate(todo):
            results.append(_build_date(con, root, listing, code, day))
            if progress:
                progress(done + 1, len(todo))
        return results
    finally:
        con.close()


def _build_date(con: duckdb.DuckDBPyConnection, root: Path, listing: dict[str, list[str]], code: str, day: date):
    started = time.perf_counter()
    name = f"{PREFIX}{signature(code, listing, day)}.parquet"
    near = {day - REACH, day, day + REACH}
    pin_listing(con, listing, {t: [p for p in listing[t] if file_date(p) in near] for t in INPUT_TABLES})
    rows = {}
    for kind, view in KINDS.items():
        rows[kind] = _write(
            rollup_dir(root, kind) / f"date={day}" / name,
            con,
            f"SELECT * FROM {view} WHERE date = ?::DATE ORDER BY trace_id, start_time",
            [day],
            f", COMPRESSION zstd, ROW_GROUP_SIZE {_ROW_GROUP}",
        )
    calls = _sql_path(rollup_dir(root, "llm_calls") / f"date={day}" / name)
    facts = f"SELECT {', '.join(FACT_COLUMNS)} FROM read_parquet('{calls}') ORDER BY {_FACTS_ORDER}"
    _write(rollup_dir(root, FACTS) / f"date={day}" / name, con, facts, options=", COMPRESSION lz4")
    for kind in ALL_KINDS:  # stale ones: no query uses them any more (a query that listed one retries)
        for old in (rollup_dir(root, kind) / f"date={day}").glob(f"{PREFIX}*.parquet"):
            if old.name != name:
                old.unlink(missing_ok=True)
    ms = (time.perf_counter() - started) * 1000
    logger.info("rollup date=%s tasks=%d calls=%d ms=%.0f", day, rows["tasks"], rows["llm_calls"], ms)
    return RollupResult(day, rows["tasks"], rows["llm_calls"], ms)


def _write(path: Path, con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None, options: str = "") -> int:
    """Commit the rows of `sql` as `path` (temp file, fsync, rename); one already there (a date whose other kinds
    were missing, or the facts added to an older rollup) is kept. Returns its rows."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        con.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' (FORMAT parquet{options})", params)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    return con.execute(f"SELECT count(*) FROM read_parquet('{_sql_path(path)}')").fetchall()[0][0]


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
