"""Stores whose llm_calls carry the quality columns (refused, output_signature, ...), as real Parquet.

Rows go through the store's own `write_partitioned`, so the math of the drift and alert queries can be
checked on exact, hand-made distributions; tests/test_drift.py also sends a workload through the real
collector, where store.quality computes the columns at ingest.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA
from store.writer import write_partitioned


def write_calls(root: Path, rows: list[dict[str, Any]]) -> None:
    full = [{"status": "ok", "received_at": r["start_time"]} | r for r in rows]
    write_partitioned(root, "llm_calls", pa.Table.from_pylist(full, LLM_CALLS_SCHEMA))


def write_spans(root: Path, rows: list[dict[str, Any]]) -> None:
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
