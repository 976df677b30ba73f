"""Merge the small Parquet files frequent flushes leave behind, dropping duplicate rows.

Comes in: a store root. Goes out: per date partition, one `compacted-*` file in place of many
small `part-*` ones, sorted by time and with one row per key (`store.schema.ROW_KEYS`),
committed atomically like every other file. Must not: make a reader miss a row or fail. So the
merged file is committed *before* the files it replaces disappear (views dedupe the overlap), and
the replaced files are only deleted after a grace period, long enough for any query that listed
them to finish. The pending deletions live in `<root>/compaction/obsolete.tsv` so a restart
still deletes them.

Compacted files of a partition never share a key: a new one leaves out rows an older one holds.
The catalog relies on that to read them without deduping. So small compacted files are merged
(`merge_compacted`) without a grace period in which both copies would be compacted: the merged
file first appears under a fresh `part-merge-*` name (its rows are then dropped by the views as
already compacted), the inputs go, and only then does it take a compacted name.
DuckDB does the merge, streaming within a memory limit, so a large partition never has to fit in
memory.
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
    max_input_bytes: int = 512 << 20,
    grace_s: float = 300.0,
) -> list[CompactionResult]:
    """Compact every partition holding at least `min_files` small files; then delete what is due."""
    results = []
    for table in TABLES:
        for folder in sorted(table_dir(root, table).glob("date=*")):
            result = compact_partition(root, table, folder, min_files, small_file_bytes, max_input_bytes, grace_s)
            merged = merge_compacted(table, folder, min_files, small_file_bytes, max_input_bytes)
            results.extend(r for r in (result, merged) if r is not None)
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
    keys = ROW_KEYS[table]
    older = [str(p) for p in sorted(folder.glob(f"{COMPACTED_PREFIX}*.parquet"))]
    # Rows an older compacted file holds stay there: compacted files never share a key.
    unseen = (
        "WHERE NOT EXISTS (SELECT 1 FROM read_parquet($older, union_by_name = true) o WHERE "
        + " AND ".join(f"o.{k} = f.{k}" for k in keys)
        + ")"
        if older
        else ""
    )
    rows = _copy(
        f"""SELECT * FROM (
                SELECT * FROM read_parquet($files, union_by_name = true)
                QUALIFY row_number() OVER (PARTITION BY {", ".join(keys)} ORDER BY received_at) = 1
            ) f {unseen}
            ORDER BY {PARTITION_TIME[table]}""",
        {"files": [str(p) for p in batch]} | ({"older": older} if older else {}),
        tmp,
    )
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
    rows = _copy(
        f"SELECT * FROM read_parquet($files, union_by_name = true) ORDER BY {PARTITION_TIME[table]}",
        {"files": [str(p) for p in batch]},
        tmp,
    )
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


def _copy(select: str, params: dict, tmp: Path) -> int:
    """Write the rows of `select` to `tmp` (fsynced); return how many. DuckDB streams within a memory limit."""
    con = duckdb.connect(":memory:", config={"memory_limit": "512MB", "threads": 1})
    try:
        con.execute(
            f"COPY ({select}) TO '{_sql_string(tmp)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
            params,
        )
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{_sql_string(tmp)}')").fetchall()[0][0]
    finally:
        con.close()
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
