"""Task verdicts given after the fact → rows of the `outcomes` table.

Comes in: a trace id, a label (success / failure, or an evaluator's label), an optional score,
comment and source. Goes out: validated rows, and `record_verdicts` writes them to the store (an
atomically committed Parquet file, or a Delta commit with a uri), durable when it returns. Used by `vigil outcome`, the
collector's `POST /v1/outcomes` endpoint and (through the pipeline) OTLP outcome log events.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pyarrow as pa

from store.location import Destination, append_rows
from store.schema import OUTCOMES_SCHEMA, content_id

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


class VerdictError(ValueError):
    """A verdict that cannot be stored; the message says what to fix."""


def check_trace_id(trace_id: object) -> str:
    """The trace id as stored (lowercase hex); VerdictError when it is not an OTel trace id."""
    text = str(trace_id).strip().lower()
    if not _TRACE_ID.match(text) or text == "0" * 32:
        raise VerdictError(f"trace_id {text!r} must be 32 hex characters (the OTel trace id)")
    return text


def verdict_row(
    trace_id: str,
    outcome: str,
    score: float | None = None,
    comment: str | None = None,
    source: str = "api",
    time_ns: int | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    trace_id = check_trace_id(trace_id)
    outcome = str(outcome).strip().lower()
    if not outcome:
        raise VerdictError("outcome must not be empty: use success or failure")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise VerdictError(f"score {score!r} must be a number") from None
        if not math.isfinite(score):
            raise VerdictError("score must be a finite number")
    now = time.time_ns()
    row = {
        "time": time_ns or now,
        "trace_id": trace_id,
        "outcome": outcome,
        "score": score,
        "comment": None if comment is None else str(comment),
        "source": str(source or "api"),
        "received_at": now,
        "project": project,
    }
    fields = ("time", "trace_id", "outcome", "score", "comment", "source")
    row["record_id"] = content_id(*(row[k] for k in fields), *([project] if project is not None else []))
    return row


def record_verdicts(where: Destination, rows: list[dict[str, Any]]) -> int:
    """Append verdicts where the store keeps its tables (store.location.append_rows)."""
    append_rows(where, "outcomes", pa.Table.from_pylist(rows, OUTCOMES_SCHEMA), tag="verdict")
    return len(rows)
