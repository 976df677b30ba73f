"""Where the tables live, and the one way to append to them: plain Parquet or Delta Lake.

`[store] uri` empty (the default): every table is plain Parquet under `data_dir` (store.writer),
exactly as before. `uri = "s3://bucket/prefix"` (or `file:///path`): every table is a Delta Lake
table at `<uri>/<table>`, partitioned by `date` (store.delta), so several collectors on several
machines can append at once: each commit is a put-if-absent of the next log entry, and the loser of
a race retries on top of the winner, with no lock service. `data_dir` stays a local folder either way:
the write-ahead log must be fsynced on a local disk before a request is acknowledged.

Comes in: a `StoreConfig`. Goes out: a `TableLocation` and a `TableSink`. The sink's `write(table,
rows, seq)` is what the collector calls; `committed()` tells a restarted collector which WAL
sequence numbers already reached each table, so WAL replay after a crash adds nothing twice.
Must not: read credentials from the config: S3 credentials come from the AWS_* environment variables,
which delta-rs reads itself (as the AWS SDKs do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from store.config import StoreConfig
from store.schema import TABLES
from store.writer import table_dir, write_partitioned


@dataclass(frozen=True)
class TableLocation:
    root: Path  # the local data dir: WAL, collector state, and the tables themselves when `uri` is ""
    uri: str = ""  # "" → plain Parquet under root; else Delta tables at <uri>/<table>
    storage_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_delta(self) -> bool:
        return bool(self.uri)

    def table_uri(self, table: str) -> str:
        return f"{self.uri.rstrip('/')}/{table}"

    def describe(self) -> str:
        return self.uri if self.uri else str(self.root.resolve())


def table_location(store: StoreConfig) -> TableLocation:
    options = {}
    if store.s3_endpoint_url:
        options["AWS_ENDPOINT_URL"] = store.s3_endpoint_url
    if store.s3_region:
        options["AWS_REGION"] = store.s3_region
    if store.s3_allow_http:
        options["AWS_ALLOW_HTTP"] = "true"
    return TableLocation(Path(store.data_dir), store.uri, options)


class TableSink(Protocol):
    def committed(self) -> dict[str, int]:
        """Per table, the highest WAL sequence number whose rows are already stored (0: none known)."""
        ...

    def write(self, table: str, data: pa.Table, seq: int) -> None:
        """Append the rows of WAL records up to `seq`; raises OSError when the store cannot be written."""
        ...

    def append(self, table: str, data: pa.Table) -> None:
        """Append rows that do not come from the WAL (verdicts, prompts): views dedupe them by key."""
        ...


class ParquetSink:
    """Local Parquet: files are tagged with the sequence number, and views dedupe a replayed record."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def committed(self) -> dict[str, int]:
        return {}

    def write(self, table: str, data: pa.Table, seq: int) -> None:
        write_partitioned(self.root, table, data, tag=f"{seq:020d}")

    def append(self, table: str, data: pa.Table) -> None:
        write_partitioned(self.root, table, data)


def open_sink(location: TableLocation, app_id: str = "") -> TableSink:
    """`app_id` names the writer in Delta app transactions: one per collector instance (its WAL)."""
    if not location.is_delta:
        return ParquetSink(location.root)
    from store.delta import DeltaSink  # deltalake loads only for stores that use it

    return DeltaSink(location, app_id)


# Where rows go: a data dir (plain Parquet), a store config (its uri decides) or a location.
Destination = Path | TableLocation | StoreConfig


def as_location(where: Destination) -> TableLocation:
    if isinstance(where, TableLocation):
        return where
    if isinstance(where, StoreConfig):
        return table_location(where)
    return TableLocation(Path(where))


def append_rows(where: Destination, table: str, data: pa.Table, tag: str = "") -> None:
    """The one way to append rows that do not come from the WAL (verdicts, prompts, replay sets, runs,
    results, imports): Parquet files under the data dir (tagged `tag`), or a Delta commit with a uri.
    Durable when it returns; the views dedupe by key, so writing the same rows twice adds nothing."""
    location = as_location(where)
    if location.is_delta:
        open_sink(location).append(table, data)
    else:
        write_partitioned(location.root, table, data, tag=tag)


def stored_tables(location: TableLocation) -> tuple[str, ...]:
    """The tables that hold data: what the dashboards show pages for."""
    return tuple(t for t in TABLES if has_data(location, t))


def has_data(location: TableLocation, table: str) -> bool:
    """Whether `table` has a data file (local: a Parquet file; Delta: a file in its newest snapshot)."""
    if location.is_delta:
        from store.delta import has_files

        return has_files(location, table)
    return any(table_dir(location.root, table).glob("date=*/*.parquet"))
