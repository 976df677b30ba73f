"""Merge the small Parquet files frequent flushes leave behind, dropping duplicate rows.

Comes in: a store root. Goes out: per date partition, one file in place of many small ones,
sorted by time and with one row per key (`store.schema.ROW_KEYS`), committed atomically like
every other file. Must not: make a reader miss a row or fail. So the merged file is committed
*before* the files it replaces disappear (views dedupe the overlap), and the replaced files are
only deleted after a grace period, long enough for any query that listed them to finish. The
pending deletions live in `<root>/compaction/obsolete.tsv` so a restart still deletes them.
DuckDB does the merge, streaming within a memory limit, so a large partition never has to fit in
memory.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from store.schema import PARTITION_TIME, ROW_KEYS, TABLES
from store.writer import fsync_dir, table_dir

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
            if result is not None:
                results.append(result)
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
    small = [
        path
        for path in sorted(folder.glob("part-*.parquet"))
        if str(path) not in pending and path.stat().st_size < small_file_bytes
    ]
    batch, total = [], 0
    for path in small:  # oldest names first; stop at the input budget, the rest waits for the next round
        size = path.stat().st_size
        if batch and total + size > max_input_bytes:
            break
        batch.append(path)
        total += size
    if len(batch) < min_files:
        return None
    final = folder / f"part-c{uuid.uuid4().hex[:12]}.parquet"
    tmp = folder / f".{final.name}.tmp"
    keys = ", ".join(ROW_KEYS[table])
    con = duckdb.connect(":memory:", config={"memory_limit": "512MB", "threads": 1})
    try:
        con.execute(
            f"""COPY (
                    SELECT * FROM read_parquet($files, union_by_name = true)
                    QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY received_at) = 1
                    ORDER BY {PARTITION_TIME[table]}
                ) TO '{_sql_string(tmp)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)""",
            {"files": [str(p) for p in batch]},
        )
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{_sql_string(tmp)}')").fetchone()[0]
    finally:
        con.close()
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(folder)
    _mark_obsolete(root, batch, time.time() + grace_s)
    result = CompactionResult(table, folder.name, len(batch), rows, total, final.stat().st_size)
    logger.info(
        "compacted table=%s partition=%s files=%d rows=%d bytes_in=%d bytes_out=%d",
        table, folder.name, len(batch), rows, total, result.bytes_out,
    )  # fmt: skip
    return result


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
