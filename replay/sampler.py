"""Stored LLM calls → a replay set: a reproducible sample, saved as a snapshot in `replay_sets`.

Comes in: a `SampleSpec` (filters, size, seed, random or stratified). Goes out: the chosen calls'
inputs and original outputs, written as one `replay_sets` file under the set's id. Must not:
depend on row order or randomness outside the seed — the rank of a call is md5(seed, trace_id,
span_id), so the same spec over the same calls draws the same set on any machine.

Stratified sampling takes calls round-robin across the strata (model or prompt version), each
stratum in its own seeded order: every stratum is represented as far as it has calls, and the
larger strata fill the rest. The set is a snapshot (inputs, outputs, costs), so it replays after
retention has removed the original calls and can travel in a bundle.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from store.catalog import fetch
from store.location import Destination, append_rows
from store.schema import REPLAY_SETS_SCHEMA

STRATA = {"model": "coalesce(request_model, response_model, '?')", "prompt_version": "coalesce(prompt_version, '?')"}
_SNAPSHOT = [f.name for f in REPLAY_SETS_SCHEMA if f.name not in ("set_id", "position", "stratum", "spec")]
_FROM_CALLS = {"call_start_time": "start_time", "created_at": "now()", "received_at": "now()"}


class SampleError(ValueError):
    """A sample that cannot be drawn; the message says what to change."""


@dataclass(frozen=True)
class SampleSpec:
    size: int = 100
    seed: int = 0
    stratify: str | None = None  # None: simple random; else a key of STRATA
    prompt_name: str | None = None
    prompt_version: str | None = None
    service: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None  # the task's outcome: success | failure | unknown
    refused: bool | None = None
    where: str | None = None  # any SQL condition over llm_calls' columns (and task_outcome)


def sample_calls(con: duckdb.DuckDBPyConnection, spec: SampleSpec) -> pa.Table:
    """The chosen calls with the snapshot columns, plus `position` and `stratum`."""
    if spec.size <= 0:
        raise SampleError("the sample size must be at least 1")
    if spec.stratify is not None and spec.stratify not in STRATA:
        raise SampleError(f"cannot stratify by {spec.stratify!r}; choose one of {', '.join(STRATA)}")
    conditions, params = _conditions(con, spec)
    stratum = STRATA[spec.stratify] if spec.stratify else "'all'"
    columns = ", ".join(f"{_FROM_CALLS.get(name, name)} AS {name}" for name in _SNAPSHOT)
    sql = f"""
        WITH candidates AS (
            SELECT c.*, t.outcome AS task_outcome
            FROM llm_calls c LEFT JOIN tasks t USING (trace_id)
        ),
        chosen AS (
            SELECT *, {stratum} AS stratum, md5(concat($seed::VARCHAR, '/', trace_id, '/', span_id)) AS draw
            FROM candidates WHERE {" AND ".join(conditions)}
        ),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY stratum ORDER BY draw) AS turn FROM chosen)
        SELECT {columns}, stratum, row_number() OVER (ORDER BY turn, draw) - 1 AS position
        FROM ranked ORDER BY turn, draw LIMIT $size
    """
    try:
        return fetch(con, sql, params | {"seed": spec.seed, "size": spec.size})
    except duckdb.Error as exc:
        raise SampleError(f"the sample query failed: {exc}") from None


def _conditions(con: duckdb.DuckDBPyConnection, spec: SampleSpec) -> tuple[list[str], dict]:
    # Only calls that can be rebuilt: a chat with stored input messages.
    conditions = ["input_messages IS NOT NULL", "coalesce(operation, 'chat') IN ('chat', 'text_completion')"]
    params: dict = {}
    for column, value in (
        ("prompt_name", spec.prompt_name),
        ("prompt_version", spec.prompt_version),
        ("service_name", spec.service),
        ("task_outcome", spec.outcome),
    ):
        if value is not None:
            conditions.append(f"{column} = ${column}")
            params[column] = value
    if spec.model is not None:
        conditions.append("(request_model = $model OR response_model = $model)")
        params["model"] = spec.model
    if spec.since is not None:
        conditions.append("start_time >= $since")
        params["since"] = spec.since
    if spec.until is not None:
        conditions.append("start_time < $until")
        params["until"] = spec.until
    if spec.refused is not None:
        if "refused" not in {row[0] for row in con.sql("DESCRIBE llm_calls").fetchall()}:
            raise SampleError(
                "this store has no `refused` column yet (refusal detection is not installed); "
                'filter with --where "refusal IS NOT NULL" (provider-signalled refusals) instead'
            )
        conditions.append("coalesce(refused, false) = $refused")
        params["refused"] = spec.refused
    if spec.where:
        conditions.append(f"({spec.where})")
    return conditions, params


def save_set(store: Destination, cases: pa.Table, spec: SampleSpec, set_id: str | None = None) -> str:
    """Write the sample as replay set `set_id` (a fresh id when None); returns the id."""
    if cases.num_rows == 0:
        raise SampleError("no stored call matches the filters; widen them (see `vigil prompt list` for versions)")
    set_id = set_id or f"set-{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:6]}"
    now = time.time_ns()
    spec_json = json.dumps(asdict(spec), default=str, sort_keys=True)
    rows = cases.append_column("set_id", pa.array([set_id] * cases.num_rows, pa.string()))
    rows = rows.append_column("spec", pa.array([spec_json] * cases.num_rows, pa.string()))
    for name in ("created_at", "received_at"):
        rows = rows.set_column(rows.schema.get_field_index(name), name, pa.array([now] * cases.num_rows, pa.int64()))
    rows = rows.select(REPLAY_SETS_SCHEMA.names)
    append_rows(store, "replay_sets", rows.cast(REPLAY_SETS_SCHEMA), tag="set")
    return set_id


def load_set(con: duckdb.DuckDBPyConnection, set_id: str) -> list[dict]:
    rows = fetch(con, "SELECT * FROM replay_sets WHERE set_id = ? ORDER BY position", [set_id]).to_pylist()
    if not rows:
        raise SampleError(f"no replay set {set_id!r}; `vigil replay list` shows the sets, `vigil replay sample` draws")
    return rows
