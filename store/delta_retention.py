"""Retention on Delta Lake tables (`[store] uri`): the same limits as store.retention, as Delta deletes.

Comes in: a `TableLocation` with a uri and `[retention]` limits. Goes out: for each table and `date`
partition past its limit (per table, project and project:table, exactly as `store.retention.days_for`),
one `DeltaTable.delete` commit with a predicate on `date` (and `project`, for per-project limits).
Files whose rows all go are removed from the table; a file that mixes expired and kept projects is
rewritten without the expired rows, in the same commit. Readers keep their snapshot: the files stay in
the bucket, unreferenced, until the next `vigil compact` vacuums files removed over `compaction_grace_s`
ago, which is when the data is physically gone.
Must not: lose an append. A delete that conflicts with a concurrent commit (a late row for that day)
re-reads the table and tries again; rows appended meanwhile for an expired day are deleted with it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime

import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from store.config import RetentionConfig
from store.delta import PARTITION, DeltaStoreError, _open
from store.location import TableLocation
from store.retention import RetentionResult, _expired, days_for
from store.schema import TABLES

logger = logging.getLogger(__name__)

_ATTEMPTS = 5


def apply_delta_retention(
    location: TableLocation, retention: RetentionConfig, now: datetime | None = None, dry_run: bool = False
) -> list[RetentionResult]:
    """Delete (or with `dry_run`, only list) what is past its limit; one result per partition touched."""
    now = now or datetime.now(UTC)
    results = []
    for table in TABLES:
        dt = _open(location, table)
        if dt is None:
            continue
        for day in sorted({p[PARTITION] for p in dt.partitions()}):
            result = _apply_partition(dt, retention, table, day, now, dry_run)
            if result is not None:
                results.append(result)
    return results


def _apply_partition(
    dt: DeltaTable, retention: RetentionConfig, table: str, day: str, now: datetime, dry_run: bool
) -> RetentionResult | None:
    try:
        when = date.fromisoformat(day)
    except ValueError:
        return None
    by_project = "project" in TABLES[table].names and (retention.projects or retention.project_tables)
    if not by_project:
        if not _expired(days_for(retention, table, None), when, now):
            return None
        plan, expired = {f: True for f in _partition(dt, day).files}, ()
    else:
        projects = _projects_by_file(dt, day)
        seen = {p for ps in projects.values() for p in ps}
        expired = tuple(sorted((p for p in seen if _expired(days_for(retention, table, p), when, now)), key=str))
        plan = {f: set(ps) <= set(expired) for f, ps in projects.items() if set(ps) & set(expired)}
    if not plan:
        return None
    deleted = sum(plan.values())
    names = tuple(sorted(p or "" for p in expired))
    result = RetentionResult(table, f"{PARTITION}={day}", deleted, len(plan) - deleted, names)
    if not dry_run:
        metrics = _delete(dt, _predicate(day, expired if by_project else None))
        logger.info("retention delta table=%s partition=%s projects=%s %s", table, day, ",".join(names) or "-", metrics)
    return result


def _projects_by_file(dt: DeltaTable, day: str) -> dict[str, list[str | None]]:
    """The distinct projects of each file of one partition (only the `project` column is read)."""
    dataset = _partition(dt, day)
    return {
        fragment.path: pc.unique(fragment.to_table(columns=["project"])["project"]).to_pylist()
        for fragment in dataset.get_fragments()
    }


def _partition(dt: DeltaTable, day: str):
    return dt.to_pyarrow_dataset(file_pruning_predicate=[(PARTITION, "=", day)])


def _predicate(day: str, projects: tuple[str | None, ...] | None) -> str:
    """`date = 'D'`, narrowed to the expired projects (None: rows without a project) when limits are per project."""
    where = f"{PARTITION} = '{day}'"
    if projects is None:
        return where
    named = [p for p in projects if p is not None]
    terms = [f"project IN ({', '.join(_quote(p) for p in named)})"] if named else []
    if None in projects:
        terms.append("project IS NULL")
    return f"{where} AND ({' OR '.join(terms)})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _delete(dt: DeltaTable, predicate: str) -> dict:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return dt.delete(predicate)
        except CommitFailedError as exc:  # a concurrent commit touched the partition: read it again, retry
            if attempt == _ATTEMPTS:
                raise DeltaStoreError(f"retention delete on {dt.table_uri} failed {attempt} times: {exc}") from exc
            time.sleep(0.05 * attempt)
            dt.update_incremental()
    raise AssertionError("unreachable")
