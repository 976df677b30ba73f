"""Retention: delete data older than the configured number of days, per table and per project.

Comes in: a store root and `[retention]` limits. Goes out: date partitions past their limit
removed, file by file. A file whose rows all belong to expired projects (or any file, when the
table's limit alone applies) is deleted whole; a file that mixes expired and kept projects is
rewritten without the expired rows (temp file, fsync, rename) and the original deleted. Partitions
stay by date only, so the writer, compaction and every reader keep their layout.
Must not: fail a reader. A file is only deleted after its replacement (if any) is committed; a
query that listed a file just deleted gets DuckDB's "No such file", which `store.catalog.fetch`
retries with a fresh listing; a file already opened stays readable until closed (POSIX unlink).
A limit of 0 days keeps data forever. A partition is expired once its whole day is older than the
limit, so no row younger than the limit is ever removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from store.compaction import _sql_string
from store.config import RetentionConfig
from store.rollups import INPUT_TABLES, REACH, drop_rollups, file_date
from store.schema import TABLES
from store.writer import fsync_dir, table_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionResult:
    table: str
    partition: str
    files_deleted: int
    files_rewritten: int
    projects: tuple[str, ...] = field(default=())  # expired projects ("" for rows without one)


def days_for(retention: RetentionConfig, table: str, project: str | None) -> float:
    """The limit for one project's table: project:table, then project, then table, then default."""
    if project is not None:
        for days in (retention.project_tables.get(f"{project}:{table}"), retention.projects.get(project)):
            if days is not None:
                return days
    return retention.tables.get(table, retention.default_days)


def apply_retention(
    root: Path, retention: RetentionConfig, now: datetime | None = None, dry_run: bool = False
) -> list[RetentionResult]:
    """Delete (or with `dry_run`, only list) what is past its limit; one result per partition touched."""
    now = now or datetime.now(UTC)
    results = []
    for table in TABLES:
        for folder in sorted(table_dir(root, table).glob("date=*")):
            result = _apply_partition(retention, table, folder, now, dry_run)
            if result is not None:
                results.append(result)
    if not dry_run:
        _drop_rollups_of(root, results)
    return results


def _drop_rollups_of(root: Path, results: list[RetentionResult]) -> None:
    """Rollups hold copies of the rows: those built from a partition retention touched go too (store.rollups)."""
    touched = {file_date(Path(r.table, r.partition, "file")) for r in results if r.table in INPUT_TABLES} - {None}
    near = {day + step for day in touched for step in (-REACH, timedelta(0), REACH)}
    if near and drop_rollups(root, near):
        logger.info("retention dropped rollups dates=%s", ",".join(str(d) for d in sorted(near)))


def _expired(days: float, day: date, now: datetime) -> bool:
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return days > 0 and end <= now - timedelta(days=days)


def _apply_partition(
    retention: RetentionConfig, table: str, folder: Path, now: datetime, dry_run: bool
) -> RetentionResult | None:
    try:
        day = date.fromisoformat(folder.name.removeprefix("date="))
    except ValueError:
        return None
    files = sorted(folder.glob("*.parquet"))  # fresh and compacted; temporary files are hidden (`.*.tmp`)
    if not files:
        return None
    by_project = "project" in TABLES[table].names and (retention.projects or retention.project_tables)
    if not by_project:
        if not _expired(days_for(retention, table, None), day, now):
            return None
        plan = {path: (True, ()) for path in files}
    else:
        plan = {}
        for path, projects in _projects_by_file(files).items():
            expired = tuple(p for p in projects if _expired(days_for(retention, table, p), day, now))
            if expired:
                plan[path] = (len(expired) == len(projects), expired)
    if not plan:
        return None
    deleted = sum(whole for whole, _ in plan.values())
    names = sorted({p or "" for _, expired in plan.values() for p in expired})
    result = RetentionResult(table, folder.name, deleted, len(plan) - deleted, tuple(names))
    if dry_run:
        return result
    for path, (whole, expired) in plan.items():
        if not whole:
            _rewrite_without(path, expired)
        path.unlink(missing_ok=True)
    fsync_dir(folder)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only if empty: a writer may be adding a late file right now
    logger.info(
        "retention table=%s partition=%s deleted=%d rewritten=%d projects=%s",
        table, folder.name, result.files_deleted, result.files_rewritten, ",".join(names) or "-",
    )  # fmt: skip
    return result


def _projects_by_file(files: list[Path]) -> dict[Path, list[str | None]]:
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        rows = con.execute(
            "SELECT filename, list(DISTINCT project) FROM read_parquet($files, filename = true, union_by_name = true)"
            " GROUP BY filename",
            {"files": [str(p) for p in files]},
        ).fetchall()
    finally:
        con.close()
    return {Path(name): projects for name, projects in rows}


def _rewrite_without(path: Path, projects: tuple[str | None, ...]) -> None:
    """Commit a copy of `path` without the rows of `projects`, beside it, before it goes."""
    named = [p for p in projects if p is not None]
    keep = "(project IS NULL OR NOT list_contains($projects, project))" if named else "TRUE"
    if None in projects:
        keep += " AND project IS NOT NULL"
    final = path.with_name(f"part-r{uuid.uuid4().hex[:12]}.parquet")
    tmp = path.with_name(f".{final.name}.tmp")
    con = duckdb.connect(":memory:", config={"memory_limit": "512MB", "threads": 1})
    try:
        con.execute(
            f"COPY (SELECT * FROM read_parquet($file, hive_partitioning = false) WHERE {keep}) "
            f"TO '{_sql_string(tmp)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
            {"file": str(path), "projects": named} if named else {"file": str(path)},
        )
    finally:
        con.close()
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    fsync_dir(path.parent)
