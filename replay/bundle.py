"""A replay run ↔ one self-contained file: inputs, outputs, prompt versions, model, parameters, prices.

`export_bundle` writes gzip'd JSON: the run's state rows, its replay set (the calls' inputs and
original outputs), its results (what was sent and what came back), the prompt versions involved
(a version known only from traces is included as the template the traces carried) and the
per-million-token prices of every model involved at export time. `import_bundle` writes those
rows into another store through the same writer, so the run shows up there (and its set can be
replayed again); importing the same bundle twice changes nothing, as every table dedupes by key.
Times are integers of UTC nanoseconds.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from replay.prompts import find_prompt
from store.catalog import fetch
from store.location import Destination, append_rows
from store.pricing import Pricer
from store.schema import TABLES

FORMAT, VERSION = "vigil-replay-bundle", 1
_TABLES = ("replay_runs", "replay_sets", "replay_results", "prompts")


class BundleError(ValueError):
    """A bundle that cannot be read or written; the message says what is wrong."""


def export_bundle(con: duckdb.DuckDBPyConnection, run_id: str, path: Path, pricer: Pricer) -> dict[str, int]:
    runs = _rows(con, "replay_runs", "run_id = ?", [run_id])
    if not runs:
        raise BundleError(f"no replay run {run_id!r}; `vigil replay list` shows the runs")
    latest = max(runs, key=lambda r: r["updated_at"])
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.time_ns(),
        "replay_runs": runs,
        "replay_sets": _rows(con, "replay_sets", "set_id = ?", [latest["set_id"]]),
        "replay_results": _rows(con, "replay_results", "run_id = ?", [run_id]),
    }
    payload["prompts"] = _prompts(con, latest, payload["replay_sets"])
    models = {r["request_model"] for r in payload["replay_sets"]} | {r["model"] for r in payload["replay_results"]}
    payload["prices"] = {m: _price(pricer, latest["provider"], m) for m in sorted(m for m in models if m)}
    with gzip.open(path, "wt", encoding="utf-8") as sink:
        json.dump(payload, sink)
    return {table: len(payload[table]) for table in _TABLES}


def import_bundle(store: Destination, path: Path) -> dict[str, int]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source:
            payload = json.load(source)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is not a replay bundle (gzip'd JSON): {exc}") from None
    if payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise BundleError(f"{path}: expected {FORMAT} version {VERSION}, got {payload.get('format')!r}")
    counts = {}
    for table in _TABLES:
        rows = payload.get(table) or []
        try:
            data = pa.Table.from_pylist(rows, TABLES[table])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise BundleError(f"{path}: the {table} rows do not fit the table: {exc}") from None
        append_rows(store, table, data, tag="import")
        counts[table] = len(rows)
    return counts


def _rows(con: duckdb.DuckDBPyConnection, table: str, where: str, params: list) -> list[dict[str, Any]]:
    schema = TABLES[table]
    data = fetch(con, f"SELECT {', '.join(schema.names)} FROM {table} WHERE {where}", params)
    for index, column in enumerate(data.schema):
        if pa.types.is_timestamp(column.type):  # JSON keeps the nanoseconds as an integer
            data = data.set_column(index, column.name, pc.cast(data[column.name], pa.int64()))
    return data.to_pylist()


def _prompts(con: duckdb.DuckDBPyConnection, run: dict[str, Any], cases: list[dict[str, Any]]) -> list[dict]:
    wanted = {(run["prompt_name"], run["prompt_version"])} | {(c["prompt_name"], c["prompt_version"]) for c in cases}
    rows = []
    for name, version in sorted(w for w in wanted if w[0] and w[1]):
        found = find_prompt(con, name, version)
        if found is None:
            continue
        rows.append(
            {
                "name": name,
                "version": version,
                "template": found.template,
                "role": found.role,
                "system_prompt": found.system_prompt,
                "model": found.model,
                "params": json.dumps(found.params, sort_keys=True),
                "created_at": run["created_at"],
                "received_at": time.time_ns(),
            }
        )
    return rows


def _price(pricer: Pricer, provider: str | None, model: str) -> dict[str, Any]:
    found = pricer.price(provider, model, None, 1_000_000, 0)
    output = pricer.price(provider, model, None, 0, 1_000_000)
    return {"input_usd_per_mtok": found.cost_usd, "output_usd_per_mtok": output.cost_usd, "source": found.price_model}
