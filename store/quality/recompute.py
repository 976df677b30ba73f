"""Recompute the quality columns of stored LLM calls (`vigil quality recompute`).

Comes in: a store root and the `[quality]` rules to apply. Goes out: every `llm_calls` and
`llm_messages` Parquet file that existed when the run started, rewritten in place (see
`store.writer.replace_file`) with fresh refusal, hedging, signature and validation columns, and
a summary. For calls stored before these columns existed, or after the rules changed. Only
files whose quality columns change are rewritten.

What it cannot see again: the span's application-reported validation. It is kept as it was
stored (a failure's `application reported: ...` error, or a pass where nothing was asked).
On a Delta store each day is rewritten in one commit instead (store.delta_rewrite).
Compaction merging a file while it is rewritten may keep the old values in the merged file, as
with `vigil reprice`: run it again afterwards.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from store.location import Destination, TableLocation, as_location
from store.quality import QUALITY_COLUMNS, message_quality_columns, quality_columns
from store.quality.refusal import Rules
from store.quality.validation import requested_json
from store.schema import LLM_CALLS_SCHEMA, LLM_MESSAGES_SCHEMA
from store.writer import replace_file, table_dir

_NO_OUTPUT = frozenset({"embeddings", "rerank"})  # as collector.normalize: no answer to judge
_SHAPE = ("output_format", "output_signature", "output_keys", "output_length")
_MESSAGE_COLUMNS = (*(c for c in QUALITY_COLUMNS if c not in ("refused", "validation_status", "validation_error")),)
_APP_PREFIX = "application reported: "


@dataclass
class RecomputeSummary:
    files: int = 0
    rewritten: int = 0
    rows: int = 0
    changed: int = 0
    refused: int = 0  # calls refused after the run


def recompute_store(
    root: Destination, rules: Rules, progress: Callable[[int, int], None] | None = None
) -> RecomputeSummary:
    """Local files one by one; on a Delta store (`[store] uri`) day by day, each day one commit
    (store.delta_rewrite), `files` and `rewritten` then counting days."""
    location = as_location(root)
    if location.is_delta:
        return _recompute_delta(location, rules, progress)
    root = location.root
    # Every committed file, compacted ones included (temporary files are hidden: `.*.tmp`).
    jobs = [(p, t) for t in ("llm_calls", "llm_messages") for p in sorted(table_dir(root, t).glob("date=*/*.parquet"))]
    summary = RecomputeSummary()
    for done, (path, table) in enumerate(jobs, 1):
        with contextlib.suppress(FileNotFoundError):  # merged away by compaction: its rows live on
            recompute_file(path, table, rules, summary)
        if progress is not None:
            progress(done, len(jobs))
    return summary


def _recompute_delta(
    location: TableLocation, rules: Rules, progress: Callable[[int, int], None] | None
) -> RecomputeSummary:
    from store.delta_rewrite import rewrite_partitions

    summary = RecomputeSummary()
    for table in ("llm_calls", "llm_messages"):
        days, rewritten = rewrite_partitions(location, table, functools.partial(_rows_of, table, rules, summary))
        summary.files += days
        summary.rewritten += rewritten
        if progress is not None:
            progress(1 + (table == "llm_messages"), 2)
    return summary


def _rows_of(table: str, rules: Rules, summary: RecomputeSummary, rows: pa.Table) -> pa.Table | None:
    return recompute_rows(rows, table, rules, summary)


def recompute_file(path: Path, table: str, rules: Rules, summary: RecomputeSummary) -> bool:
    summary.files += 1
    after = recompute_rows(pq.read_table(path, partitioning=None), table, rules, summary)
    if after is None or not replace_file(path, after, "quality"):
        return False
    summary.rewritten += 1
    return True


def recompute_rows(before: pa.Table, table: str, rules: Rules, summary: RecomputeSummary) -> pa.Table | None:
    """The rows with fresh quality columns, counted into `summary`; None when none changed."""
    rows = before.to_pylist()
    if table == "llm_calls":
        fresh, names, schema = [_call(row, rules) for row in rows], QUALITY_COLUMNS, LLM_CALLS_SCHEMA
        summary.refused += sum(bool(f.get("refused")) for f in fresh)
    else:
        fresh, names, schema = (
            [_message(row, rules) for row in rows],
            _MESSAGE_COLUMNS + ("json_error",),
            LLM_MESSAGES_SCHEMA,
        )
    changed = sum(any(row.get(n) != new.get(n) for n in names) for row, new in zip(rows, fresh, strict=True))
    summary.rows += len(rows)
    summary.changed += changed
    if not changed:
        return None
    after = before
    for name in names:
        column = pa.array([new.get(name) for new in fresh], schema.field(name).type)
        index = after.schema.get_field_index(name)
        after = after.set_column(index, name, column) if index >= 0 else after.append_column(name, column)
    return after


def _call(row: dict[str, Any], rules: Rules) -> dict[str, Any]:
    if row.get("operation") in _NO_OUTPUT:
        return dict.fromkeys(QUALITY_COLUMNS)
    columns = quality_columns(
        row.get("output_text"),
        tool_calls=row.get("tool_calls"),
        finish_reasons=row.get("finish_reasons") or (),
        provider_refusal=row.get("refusal"),
        request_params=row.get("request_params"),
        output_type=row.get("output_type"),
        app_validation=_stored_app_validation(row),
        rules=rules,
    )
    if not _has_output(row):  # content came as log events: the llm_calls view fills the shape
        columns.update(dict.fromkeys(_SHAPE))
    return columns


def _message(row: dict[str, Any], rules: Rules) -> dict[str, Any]:
    if row.get("direction") != "output":
        return {}
    return message_quality_columns(
        row.get("text"),
        tool_calls=row.get("tool_calls"),
        finish_reason=row.get("finish_reason"),
        provider_refusal=row.get("refusal"),
        rules=rules,
    )


def _has_output(row: dict[str, Any]) -> bool:
    messages = row.get("output_messages")
    return bool(messages) and messages not in ("null", "[]")


def _stored_app_validation(row: dict[str, Any]) -> tuple[str | None, str | None]:
    status, error = row.get("validation_status"), row.get("validation_error") or ""
    if status == "fail" and error.startswith(_APP_PREFIX):
        return "fail", error[len(_APP_PREFIX) :]
    asked, _ = requested_json(row.get("request_params"), row.get("output_type"))
    if status == "pass" and not asked:
        return "pass", None
    return None, None
