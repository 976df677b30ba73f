"""Merge the small Parquet files frequent flushes leave behind, dropping duplicate rows.

Comes in: a store root. Goes out: per date partition, one `compacted-*` file in place of many
small `part-*` ones, rows in the order they arrived and one per key (`store.schema.ROW_KEYS`),
committed atomically like every other file. Must not: make a reader miss a row or fail. So the
merged file is committed *before* the files it replaces disappear (views dedupe the overlap), and
the replaced files are only deleted after a grace period, long enough for any query that listed
them to finish. The pending deletions live in `<root>/compaction/obsolete.tsv` so a restart
still deletes them.

Compacted files of a partition never share a key: a new one leaves out rows an older one holds
at the same time (a resent row keeps its time; a key sent again at another time is taken as a
new row). The catalog relies on that to read them without deduping. So small compacted files are
merged (`merge_compacted`) without a grace period in which both copies would be compacted: the merged
file first appears under a fresh `part-merge-*` name (its rows are then dropped by the views as
already compacted), the inputs go, and only then does it take a compacted name.
DuckDB does the merge, streaming within a small memory limit (no sort, no window over whole
rows), so neither a large partition nor a busy collector has to fit it in memory.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from store.schema import PARTITION_TIME, ROW_KEYS, TABLES
from store.writer import COMPACTED_PREFIX, file_name, fsync_dir, table_dir

logger = logging.getLogger(__name__)

_OBSOLETE = Path("compaction") / "obsolete.tsv"
MAX_BATCHES = 16  # per partition and round
# Per compaction, beside the collector's own memory. Below it, a 128 MiB batch took 2.5-4x the CPU.
MEMORY_LIMIT = "128MB"
# DuckDB holds a row group in memory until it writes it: 8,192 LLM calls are ~20 MB, 122,880 were 300.
ROW_GROUP_ROWS = 8_192


@dataclass(frozen=True)
class CompactionResult:
    table: str
    partition: str
    files_in: int
    rows_out: int
    bytes_in: int
    bytes_out: int


def compact(
    root: Path,
    min_files: int = 8,
    small_file_bytes: int = 32 << 20,
    max_input_bytes: int = 128 << 20,
    grace_s: float = 300.0,
) -> list[CompactionResult]:
    """Compact every partition holding at least `min_files` small files; then delete what is due.
    Up to MAX_BATCHES batches of `max_input_bytes` per partition a round, one per partition in turn
    (so that spans do not starve llm_calls): compaction keeps up with a busy collector (~6 MB of
    Parquet a second) and a round still ends."""
    results = []
    partitions = [(table, folder) for table in TABLES for folder in sorted(table_dir(root, table).glob("date=*"))]
    busy = partitions
    for _ in range(MAX_BATCHES):
        done = [
            (t, f, compact_partition(root, t, f, min_files, small_file_bytes, max_input_bytes, grace_s))
            for t, f in busy
        ]
        results.extend(result for _, _, result in done if result is not None)
        busy = [(t, f) for t, f, result in done if result is not None]
    for table, folder in partitions:
        merged = merge_compacted(table, folder, min_files, small_file_bytes, max_input_bytes)
        results.extend([merged] if merged is not None else [])
    delete_obsolete(root)
    return results


def compact_partition(
    root: Path,
    table: str,
    folder: Path,
    min_files: int,
    small_file_bytes: int,
    max_input_bytes: int,
    grace_s: float,
) -> CompactionResult | None:
    pending = _pending(root)
    # A staged merge left by a crash (see merge_compacted) is taken whatever its size: its rows are compacted.
    small = [
        path
        for path in sorted(folder.glob("part-*.parquet"))
        if str(path) not in pending and (path.stat().st_size < small_file_bytes or path.name.startswith("part-merge-"))
    ]
    batch = _budget(small, max_input_bytes)
    if len(batch) < min_files and not any(p.name.startswith("part-merge-") for p in batch):
        return None
    final = folder / file_name(compacted=True)
    tmp = folder / f".{final.name}.tmp"
    files = {"files": [str(p) for p in batch]}
    with _connect(root) as con:
        rows = _copy(con, _deduped(con, table, folder, files), files, tmp)
    if rows:
        os.replace(tmp, final)
        fsync_dir(folder)
    else:  # every row was compacted already (a crash or a resend): nothing to add
        tmp.unlink()
    _mark_obsolete(root, batch, time.time() + grace_s)
    result = CompactionResult(table, folder.name, len(batch), rows, sum(p.stat().st_size for p in batch),
                              final.stat().st_size if rows else 0)  # fmt: skip
    logger.info(
        "compacted table=%s partition=%s files=%d rows=%d bytes_in=%d bytes_out=%d",
        table, folder.name, len(batch), rows, result.bytes_in, result.bytes_out,
    )  # fmt: skip
    return result


def _deduped(con: duckdb.DuckDBPyConnection, table: str, folder: Path, files: dict[str, list[str]]) -> str:
    """A query for the batch's rows, one per key (the first received), less keys an older compacted
    file holds. It streams: first the keys to drop are found, from the keys alone (a window over
    whole rows held the batch's message text, and took the collector past 800 MB), then the rows
    are copied past them. Older compacted files are read only where their time overlaps the batch's
    (a resent span keeps its start time): row-group statistics let DuckDB skip the rest of the day.
    """
    keys, when = ROW_KEYS[table], PARTITION_TIME[table]
    same_key = " AND ".join(f"{{a}}.{k} IS NOT DISTINCT FROM {{b}}.{k}" for k in keys)
    source = "read_parquet($files, union_by_name = true, filename = true, file_row_number = true)"
    plain = "read_parquet($files, union_by_name = true)"
    hashed = f"hash({', '.join(keys)})"
    # Keys whose hash repeats, then the exact keys among those: for a 128 MiB batch of llm_calls,
    # 39 MB more at the peak where grouping keys and file names took 89.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE repeated AS
            SELECT {", ".join(keys)}, arg_min({{'f': filename, 'r': file_row_number}}, received_at) AS first
            FROM {source}
            WHERE {hashed} IN (SELECT {hashed} FROM {plain} GROUP BY ALL HAVING count(*) > 1)
            GROUP BY ALL HAVING count(*) > 1""",
        files,
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE known AS SELECT {', '.join(keys)} FROM repeated LIMIT 0")
    older = sorted(folder.glob(f"{COMPACTED_PREFIX}*.parquet"))
    if older:
        lo, hi, kind, nulls = con.execute(
            f"SELECT min({when})::VARCHAR, max({when})::VARCHAR, typeof(min({when})), count(*) - count({when}) "
            f"FROM {plain}",
            files,
        ).fetchone()
        # Literals, not a subquery: only constants reach the Parquet reader's row-group pruning.
        overlap = f"AND o.{when} BETWEEN '{lo}'::{kind} AND '{hi}'::{kind}" if lo is not None and not nulls else ""
        # A hash match that is no exact one only puts a key here that the ANTI JOIN below cannot match.
        con.execute(
            f"""INSERT INTO known SELECT DISTINCT {", ".join(keys)}
                FROM read_parquet($older, union_by_name = true) o
                WHERE {hashed} IN (SELECT {hashed} FROM {plain}) {overlap}""",
            files | {"older": [str(p) for p in older]},
        )
    return f"""SELECT b.* EXCLUDE (filename, file_row_number) FROM {source} b
               LEFT JOIN repeated d ON {same_key.format(a="b", b="d")}
               ANTI JOIN known k ON {same_key.format(a="b", b="k")}
               WHERE d.first IS NULL OR d.first = {{'f': b.filename, 'r': b.file_row_number}}"""


def merge_compacted(
    table: str, folder: Path, min_files: int, small_file_bytes: int, max_input_bytes: int, settle_s: float = 0.2
) -> CompactionResult | None:
    """Merge small compacted files into one, in steps after each of which a reader sees every row once."""
    small = [p for p in sorted(folder.glob(f"{COMPACTED_PREFIX}*.parquet")) if p.stat().st_size < small_file_bytes]
    batch = _budget(small, max_input_bytes)
    if len(batch) < min_files:
        return None
    bytes_in = sum(p.stat().st_size for p in batch)
    staged = folder / file_name("merge")
    tmp = folder / f".{staged.name}.tmp"
    with _connect(folder.parent.parent) as con:  # <root>/<table>/date=...
        files = {"files": [str(p) for p in batch]}
        rows = _copy(con, "SELECT * FROM read_parquet($files, union_by_name = true)", files, tmp)
    os.replace(tmp, staged)  # 1. a fresh file whose rows are all compacted: the views drop them
    fsync_dir(folder)
    # Each step leaves a state the views read right (store.catalog.pin_files gives a query one
    # listing); the pauses keep one listing of the folder from straddling two steps.
    time.sleep(settle_s)
    for path in batch:  # 2. the rows are now only in the staged file (a query that listed these retries)
        path.unlink()
    final = folder / file_name(compacted=True)
    time.sleep(settle_s)
    os.link(staged, final)  # 3. compacted again; the fresh copy is anti-joined away
    fsync_dir(folder)
    time.sleep(settle_s)
    staged.unlink()  # 4.
    fsync_dir(folder)
    logger.info("merged compacted table=%s partition=%s files=%d rows=%d", table, folder.name, len(batch), rows)
    return CompactionResult(table, folder.name, len(batch), rows, bytes_in, final.stat().st_size)


def _budget(paths: list[Path], max_input_bytes: int) -> list[Path]:
    """Oldest names first; stop at the input budget, the rest waits for the next round."""
    batch, total = [], 0
    for path in paths:
        size = path.stat().st_size
        if batch and total + size > max_input_bytes:
            break
        batch.append(path)
        total += size
    return batch


def _connect(root: Path) -> duckdb.DuckDBPyConnection:
    """One thread and a small memory limit: compaction runs beside ingest, in the collector's process."""
    spill = root / "compaction" / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": MEMORY_LIMIT, "threads": 1, "temp_directory": str(spill)}
    return duckdb.connect(":memory:", config=config)


def _copy(con: duckdb.DuckDBPyConnection, select: str, params: dict, tmp: Path) -> int:
    """Write the rows of `select` to `tmp` (fsynced); return how many."""
    # zstd level 1, as the collector writes (store.writer): level 3 took 28 µs of CPU per LLM call,
    # level 1 21, for files 6% larger.
    con.execute(
        f"COPY ({select}) TO '{_sql_string(tmp)}' "
        f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS})",
        params,
    )
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{_sql_string(tmp)}')").fetchall()[0][0]
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    return rows


def delete_obsolete(root: Path, now: float | None = None) -> int:
    """Delete replaced files whose grace period is over; return how many."""
    now = time.time() if now is None else now
    pending = _pending(root)
    due = {path for path, deadline in pending.items() if deadline <= now}
    for path in due:
        Path(path).unlink(missing_ok=True)
    if due:
        _write_pending(root, {p: d for p, d in pending.items() if p not in due})
    return len(due)


def _pending(root: Path) -> dict[str, float]:
    try:
        lines = (root / _OBSOLETE).read_text().splitlines()
    except FileNotFoundError:
        return {}
    pending = {}
    for line in lines:
        deadline, _, path = line.partition("\t")
        if path:
            pending[path] = float(deadline)
    return pending


def _mark_obsolete(root: Path, paths: list[Path], deadline: float) -> None:
    _write_pending(root, _pending(root) | {str(p): deadline for p in paths})


def _write_pending(root: Path, pending: dict[str, float]) -> None:
    target = root / _OBSOLETE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(f"{deadline}\t{path}\n" for path, deadline in sorted(pending.items())))
    os.replace(tmp, target)


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")
