"""Arrow tables → Parquet files under `<root>/<table>/date=YYYY-MM-DD/`, committed atomically.

Each file is written under a hidden temporary name, fsynced, then `os.replace`d into place and
the folder fsynced, so a reader's glob never sees a half-written file and a file that is visible
survives a crash. Files are never modified after the rename: the store is append-only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from store.schema import PARTITION_TIME, TABLES

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True}
# Files compaction wrote are named `compacted-*.parquet`: their rows are unique within the partition
# (see store.compaction), so the catalog's views can skip deduping them. Every other file is `part-*`.
COMPACTED_PREFIX = "compacted-"


def table_dir(root: Path, table: str) -> Path:
    return root / table


def write_partitioned(root: Path, table: str, data: pa.Table, tag: str = "") -> list[Path]:
    """Write `data` (which must match the table's schema) split by the UTC date of its time column."""
    if data.num_rows == 0:
        return []
    data = data.cast(TABLES[table])
    dates = pc.strftime(data[PARTITION_TIME[table]], format="%Y-%m-%d", locale="C")
    written = []
    for date in pc.unique(dates).to_pylist():
        part = data.filter(pc.equal(dates, date)) if date is not None else data.filter(pc.is_null(dates))
        folder = table_dir(root, table) / f"date={date or '1970-01-01'}"
        written.append(write_file(folder, part, tag))
    return written


def file_name(tag: str = "", compacted: bool = False) -> str:
    prefix = COMPACTED_PREFIX if compacted else "part-"
    return f"{prefix}{tag + '-' if tag else ''}{uuid.uuid4().hex[:12]}.parquet"


def write_file(folder: Path, data: pa.Table, tag: str = "", compacted: bool = False, **options: object) -> Path:
    """`compacted` only for rows known unique in the partition (compaction's output, or a benchmark's)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(tag, compacted)
    tmp = folder / f".{name}.tmp"
    final = folder / name
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(data, sink, **(PARQUET_OPTIONS | options))
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not stay full of our half-written files
        raise
    fsync_dir(folder)
    return final


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(root: Path) -> int:
    """Delete temporary files a crash left behind (never visible to readers, but they take space)."""
    removed = 0
    for table in TABLES:
        for tmp in table_dir(root, table).glob("date=*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
