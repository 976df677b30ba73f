"""Stores whose llm_calls carry the quality columns (refused, output_signature, ...), written as Parquet.

The quality branch adds these columns at ingest; until its schema is in store/schema.py, the rows are
written through the store's own atomic `write_file` with LLM_CALLS_SCHEMA extended by the columns it
lacks (the catalog reads files with union_by_name, so the views show them as the collector will write them).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from store.schema import LLM_CALLS_SCHEMA
from store.writer import write_file, write_partitioned

QUALITY_COLUMNS = [
    ("refused", pa.bool_()),
    ("refusal_rule", pa.string()),
    ("hedging_rule", pa.string()),
    ("output_format", pa.string()),
    ("output_signature", pa.string()),
    ("output_keys", pa.list_(pa.string())),
    ("output_length", pa.int64()),
    ("validation_status", pa.string()),
    ("validation_error", pa.string()),
]
CALLS_SCHEMA = pa.schema(
    list(LLM_CALLS_SCHEMA) + [pa.field(n, t) for n, t in QUALITY_COLUMNS if n not in LLM_CALLS_SCHEMA.names]
)


def write_calls(root: Path, rows: list[dict[str, Any]]) -> None:
    by_date: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_date[row["start_time"].strftime("%Y-%m-%d")].append({"status": "ok", "received_at": row["start_time"]} | row)
    for date, part in by_date.items():
        write_file(root / "llm_calls" / f"date={date}", pa.Table.from_pylist(part, CALLS_SCHEMA))


def write_spans(root: Path, rows: list[dict[str, Any]]) -> None:
    from store.schema import SPANS_SCHEMA

    full = [{"received_at": r["start_time"], "status_code": "unset", "kind": "internal"} | r for r in rows]
    write_partitioned(root, "spans", pa.Table.from_pylist(full, SPANS_SCHEMA))


def call(n: int, start: datetime, signature: str | None, **columns: Any) -> dict[str, Any]:
    """An LLM call row; `n` makes its ids, `signature` the output_signature."""
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "start_time": start,
        "output_signature": signature,
    } | columns
