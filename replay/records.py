"""Replay runs and results ↔ the `replay_runs` / `replay_results` tables.

Each finished call is written at once as its own committed Parquet file (compaction merges them
later), so a run killed at any moment keeps every answer it had: a resume reads them back and
neither calls nor pays for those cases again. A run is a series of state rows (started, then
finished); the newest `updated_at` is the run's state. Each reservation is also appended to a
journal (`<data dir>/replay_journal/<run>.jsonl`) before its call is sent, so the calls in flight
at a kill count as spent when the run resumes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from store.catalog import fetch
from store.location import Destination, append_rows
from store.schema import REPLAY_RESULTS_SCHEMA, REPLAY_RUNS_SCHEMA, content_id


@dataclass(frozen=True)
class RunSettings:
    set_id: str
    prompt_name: str | None
    prompt_version: str | None  # None: each call's own prompt (a re-run of the same version)
    provider: str = "openai"
    base_url: str | None = None
    model: str | None = None
    concurrency: int = 4
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    timeout_s: float = 60.0
    budget_usd: float | None = 1.0
    budget_tokens: int | None = 200_000
    default_max_tokens: int = 1024
    allow_unpriced: bool = False
    # What the new answers are compared with: "production" (the stored answers) or "replay" (the call's own
    # prompt re-sent to the same endpoint and model, so only the prompt differs; twice the calls).
    baseline: str = "production"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_run_state(store: Destination, run_id: str, created_at: int, settings: RunSettings, **state: Any) -> None:
    now = time.time_ns()
    row = {
        "record_id": content_id(run_id, now, state.get("status")),
        "run_id": run_id,
        "created_at": created_at,
        "updated_at": now,
        "set_id": settings.set_id,
        "prompt_name": settings.prompt_name,
        "prompt_version": settings.prompt_version,
        "model": settings.model,
        "provider": settings.provider,
        "base_url": settings.base_url,
        "settings": settings.to_json(),
        "budget_usd": settings.budget_usd,
        "budget_tokens": settings.budget_tokens,
        "received_at": now,
    } | state
    if isinstance(row.get("summary"), dict):
        row["summary"] = json.dumps(row["summary"], sort_keys=True)
    append_rows(store, "replay_runs", pa.Table.from_pylist([row], REPLAY_RUNS_SCHEMA), tag="run")


def write_result(store: Destination, row: dict[str, Any]) -> None:
    now = time.time_ns()
    row = {"finished_at": now, "received_at": now} | row
    append_rows(store, "replay_results", pa.Table.from_pylist([row], REPLAY_RESULTS_SCHEMA), tag="result")


def _journal(root: Path, run_id: str) -> Path:
    return root / "replay_journal" / f"{run_id}.jsonl"


def journal_reservation(root: Path, run_id: str, case: dict[str, Any], usd: float, tokens: int) -> None:
    """Append one reservation, fsynced, before its call is sent (one JSON line per reservation)."""
    path = _journal(root, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"trace_id": case["trace_id"], "span_id": case["span_id"], "usd": usd, "tokens": tokens})
    with open(path, "a", encoding="utf-8") as sink:
        sink.write(line + "\n")
        sink.flush()
        os.fsync(sink.fileno())


def unsettled_spend(root: Path, run_id: str, finished: set[tuple[str, str]]) -> tuple[float, int]:
    """What reservations of calls without a result add up to: calls in flight when a run was killed."""
    path = _journal(root, run_id)
    if not path.exists():
        return 0.0, 0
    usd, tokens = 0.0, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the torn last line of a kill mid-write: its call was never sent
        if "carried_usd" in entry:
            usd, tokens = usd + entry["carried_usd"], tokens + entry["carried_tokens"]
        elif (entry["trace_id"], entry["span_id"]) not in finished:
            usd, tokens = usd + entry["usd"], tokens + entry["tokens"]
    return usd, tokens


def carry_unsettled(root: Path, run_id: str, finished: set[tuple[str, str]]) -> tuple[float, int]:
    """At the start of a resume: fold the journal into one `carried` line (atomically), so the calls lost
    in flight stay counted after their case is retried and gets a result. Returns the carried amounts."""
    usd, tokens = unsettled_spend(root, run_id, finished)
    path = _journal(root, run_id)
    if path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"carried_usd": usd, "carried_tokens": tokens}) + "\n", encoding="utf-8")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return usd, tokens


def latest_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    rows = fetch(
        con,
        "SELECT * FROM replay_runs WHERE run_id = ? ORDER BY updated_at DESC LIMIT 1",
        [run_id],
    ).to_pylist()
    return rows[0] if rows else None


def run_results(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    return fetch(con, "SELECT * FROM replay_results WHERE run_id = ? ORDER BY position", [run_id]).to_pylist()
