"""Delta Lake tables on object storage: appends with exactly-once replay, snapshots for readers, maintenance.

Comes in: a `store.location.TableLocation` with a uri. Goes out: Delta tables `<uri>/<table>` with the
columns of `store.schema` plus the partition column `date` (the UTC date of the table's time column,
as in the local layout's `date=` folders). Timestamps are stored in microseconds, Delta's precision.

Exactly-once: every collector flush is one commit per table carrying a Delta app transaction
`(app_id = the collector instance, version = the highest WAL sequence number in the flush)`, written in
the same atomic log entry as the rows. After a crash between that commit and the WAL checkpoint,
`committed()` reads those versions back and the collector skips the replayed records already stored,
table by table. The views still dedupe by key, for exporters that resend on their own.
Concurrency: delta-rs commits with a put-if-absent of the next `_delta_log` entry (S3 conditional
writes); the loser of a race re-reads the log and commits on top, so no lock service is needed. Only
the very first commit (creating a table) can fail that way with "metadata changed"; it is retried.
Maintenance (`compact_tables`): `optimize.compact()` then `vacuum` of files replaced more than the
grace period ago. One job runs it (`vigil compact`), never every collector: two optimizers would race
to rewrite the same files, and vacuum needs one owner who knows no reader still lists what it deletes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from store.location import TableLocation
from store.schema import PARTITION_TIME, TABLES

logger = logging.getLogger(__name__)

PARTITION = "date"
_COMMIT_ATTEMPTS = 5


class DeltaStoreError(OSError):
    """The object store could not be written or read; the collector keeps the rows and retries."""


def delta_rows(table: str, data: pa.Table) -> pa.Table:
    """`data` cast to the table's schema, plus `date` (UTC day of its time column; no time: 1970-01-01)."""
    data = data.cast(TABLES[table])
    day = pc.cast(data[PARTITION_TIME[table]], pa.date32())
    return data.append_column(PARTITION, pc.fill_null(day, pa.scalar(0, pa.date32())))


class DeltaSink:
    def __init__(self, location: TableLocation, app_id: str) -> None:
        self.location = location
        self.app_id = app_id
        self._options = dict(location.storage_options)
        self._unsure: dict[str, tuple[int, int]] = {}  # table → (seq, rows) of a write that failed ambiguously

    def committed(self) -> dict[str, int]:
        versions = {table: self._txn_version(table) for table in TABLES} if self.app_id else {}
        return {table: version for table, version in versions.items() if version}

    def write(self, table: str, data: pa.Table, seq: int) -> None:
        data = self._skip_stored(table, data)
        if data.num_rows:
            txn = CommitProperties(app_transactions=[Transaction(app_id=self.app_id, version=seq)])
            self._commit(table, data, txn, seq)

    def append(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            self._commit(table, data, None, 0)

    def _skip_stored(self, table: str, data: pa.Table) -> pa.Table:
        """After a write whose answer was lost (a timeout), its rows may be stored: they lead `data` now."""
        unsure = self._unsure.pop(table, None)
        if unsure is None:
            return data
        seq, rows = unsure
        if self._txn_version(table) >= seq:
            logger.info("delta table=%s: the earlier write seq=%d was committed; not writing it again", table, seq)
            return data.slice(rows)
        return data

    def _commit(self, table: str, data: pa.Table, txn: CommitProperties | None, seq: int) -> None:
        rows = delta_rows(table, data)
        uri = self.location.table_uri(table)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                write_deltalake(
                    uri, rows, mode="append", partition_by=[PARTITION], schema_mode="merge",
                    storage_options=self._options, commit_properties=txn,
                )  # fmt: skip
                return
            except CommitFailedError as exc:  # two writers created the table at once, or changed its schema
                if txn is not None and self._txn_version(table) >= seq:
                    return  # our commit won after all
                if attempt == _COMMIT_ATTEMPTS:
                    raise DeltaStoreError(f"delta commit to {uri} failed {attempt} times: {exc}") from exc
                time.sleep(0.05 * attempt)
            except (DeltaError, OSError) as exc:
                if txn is not None:
                    self._unsure[table] = (seq, data.num_rows)
                raise DeltaStoreError(f"cannot write delta table {uri}: {exc}") from exc

    def _txn_version(self, table: str) -> int:
        try:
            dt = _open(self.location, table)
        except (DeltaError, OSError) as exc:
            raise DeltaStoreError(f"cannot read delta table {self.location.table_uri(table)}: {exc}") from exc
        return (dt.transaction_version(self.app_id) or 0) if dt is not None else 0


def _open(location: TableLocation, table: str) -> DeltaTable | None:
    try:
        return DeltaTable(location.table_uri(table), storage_options=dict(location.storage_options))
    except TableNotFoundError:
        return None


def has_files(location: TableLocation, table: str) -> bool:
    """Whether the table exists and its newest snapshot has a data file (retention may have deleted all)."""
    dt = _open(location, table)
    return dt is not None and bool(dt.file_uris())


class Snapshots:
    """The latest version of each table, as pyarrow datasets a DuckDB connection scans (one per query)."""

    def __init__(self, location: TableLocation) -> None:
        self.location = location
        self._tables: dict[str, DeltaTable] = {}
        self._lock = threading.Lock()

    def datasets(self) -> dict[str, ds.Dataset | None]:
        """Every table's dataset at its newest version (None: no such table yet)."""
        with self._lock:
            return {table: self._dataset(table) for table in TABLES}

    def _dataset(self, table: str) -> ds.Dataset | None:
        dt = self._tables.get(table)
        try:
            if dt is None:
                dt = _open(self.location, table)
                if dt is None:
                    return None
                self._tables[table] = dt
            else:
                dt.update_incremental()
            return dt.to_pyarrow_dataset()
        except (DeltaError, OSError) as exc:
            raise DeltaStoreError(f"cannot read delta table {self.location.table_uri(table)}: {exc}") from exc


_SNAPSHOTS: dict[str, Snapshots] = {}
_SNAPSHOTS_LOCK = threading.Lock()


def snapshot_key(location: TableLocation) -> str:
    """The location as text, kept in a DuckDB variable so `store.catalog.pin_files` finds its snapshots."""
    return json.dumps([location.uri, dict(sorted(location.storage_options.items()))])


def register_snapshots(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Register each table's newest snapshot as `_delta_<table>` (an empty typed table while none exists)."""
    with _SNAPSHOTS_LOCK:
        if key not in _SNAPSHOTS:
            uri, options = json.loads(key)
            _SNAPSHOTS[key] = Snapshots(TableLocation(Path(), uri, options))
        shots = _SNAPSHOTS[key]
    for table, dataset in shots.datasets().items():
        con.register(f"_delta_{table}", dataset if dataset is not None else _empty(table))


def _empty(table: str) -> pa.Table:
    schema = TABLES[table].append(pa.field(PARTITION, pa.date32()))
    return schema.empty_table()


@dataclass(frozen=True)
class MaintenanceResult:
    table: str
    files_added: int
    files_removed: int
    files_vacuumed: int
    version: int


def compact_tables(location: TableLocation, grace_s: float, target_file_mib: int = 128) -> list[MaintenanceResult]:
    """Merge small files of every table (optimize.compact) and delete files replaced over `grace_s` ago."""
    results = []
    for table in TABLES:
        dt = _open(location, table)
        if dt is None:
            continue
        metrics = dt.optimize.compact(target_size=target_file_mib << 20)
        # vacuum counts whole hours: the grace period is rounded up, so a reader never loses a file early
        hours = math.ceil(grace_s / 3600)
        vacuumed = dt.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
        results.append(
            MaintenanceResult(
                table, metrics.get("numFilesAdded", 0), metrics.get("numFilesRemoved", 0), len(vacuumed), dt.version()
            )
        )
        logger.info("delta compacted table=%s %s vacuumed=%d", table, metrics, len(vacuumed))
    return results
