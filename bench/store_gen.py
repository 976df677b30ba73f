"""A realistic store of N LLM calls, built straight into Parquet for the query benchmarks.

In: a folder, a call count, a seed. Out: `spans`, `llm_calls` and `outcomes` partitions laid out
as the store writer and compaction leave them (`<table>/date=YYYY-MM-DD/`, sorted by time, zstd),
deterministic for a seed and end date. Must not: go through the collector (a 10M-call store
would take an hour), or hold more than one day of rows in memory.

Each task is an agent root span with 1..9 LLM calls (5 on average, so N calls make N/5 tasks)
and one tool span; 5% of calls are recorded twice (a framework LLM span above the provider's),
2% fail, 3% are refused. Tasks spread evenly over `days` days ending at `end`; prompt versions
change over time, so drift queries have something to find. The quality columns other branches
add to llm_calls (refused, output_signature, ...) are written too: read_parquet's union_by_name
lets queries see them before store.schema knows them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from store.schema import LLM_CALLS_SCHEMA, OUTCOMES_SCHEMA, SPANS_SCHEMA
from store.writer import table_dir, write_file

DAY_NS = 86_400 * 10**9
ROW_GROUP = 122_880  # as compaction writes them
SERVICES = ["support-agent", "billing-agent", "search-agent", "triage-agent"]
TASK_NAMES = ["answer_ticket", "refund", "summarize", "route", "lookup_order", "draft_reply"]
# model, provider, $/1M input, $/1M output, median latency ms
MODELS = [
    ("gpt-4o-mini", "openai", 0.15, 0.6, 600.0),
    ("gpt-4o", "openai", 2.5, 10.0, 1400.0),
    ("claude-3-5-haiku", "anthropic", 0.8, 4.0, 800.0),
    ("claude-sonnet-4", "anthropic", 3.0, 15.0, 2000.0),
    ("llama-3.1-8b-local", "vllm", 0.0, 0.0, 300.0),  # unpriced
]
PROMPTS = ["support.answer", "billing.refund", "search.rewrite"]
SIGNATURES = ["json:{answer,sources}", "json:{answer,sources,confidence}", "text", "markdown:h2,list", "tool_calls"]
KEYS = [["answer", "sources"], ["answer", "sources", "confidence"], [], [], []]
FORMATS = ["json", "json", "text", "markdown", "tool_calls"]
_WORDS = np.array(
    [
        "order",
        "refund",
        "invoice",
        "shipping",
        "account",
        "password",
        "delay",
        "cancel",
        "upgrade",
        "plan",
        "charge",
        "card",
        "address",
        "return",
        "damaged",
        "missing",
        "late",
        "help",
        "please",
        "thanks",
        "urgent",
        "status",
        "tracking",
        "number",
        "email",
        "phone",
        "update",
        "policy",
        "warranty",
        "coupon",
    ],
    dtype="S",
)
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")
_TS = pa.timestamp("ns", tz="UTC")


@dataclass(frozen=True)
class Built:
    calls: int
    llm_call_rows: int
    tasks: int
    span_rows: int
    files: int
    bytes: int
    first_day: str
    last_day: str


def build_store(
    root: Path,
    calls: int,
    days: int = 30,
    seed: int = 7,
    end: datetime | None = None,
    fresh_last_day: int = 0,
    resume: bool = False,
) -> Built:
    """Write the store; `fresh_last_day` > 0 splits the last day into that many un-compacted files, with 1% resent."""
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    end_ns = int(end.timestamp()) * 10**9
    start_ns = end_ns - days * DAY_NS
    tasks_total = max(calls // 5, 1)
    counts = _call_counts(np.random.default_rng(seed), tasks_total, calls)
    first_day = (start_ns // DAY_NS) * DAY_NS
    bounds = np.linspace(start_ns, end_ns, tasks_total + 1).astype(np.int64)[:-1]  # task starts, evenly spread
    totals = {"llm_call_rows": 0, "span_rows": 0, "files": 0, "bytes": 0}
    day_starts = list(range(first_day, end_ns, DAY_NS))
    for i, day in enumerate(day_starts):
        lo, hi = np.searchsorted(bounds, [day, day + DAY_NS])
        if hi <= lo:
            continue
        if resume and _day_done(root, day):
            continue
        rng = np.random.default_rng([seed, i])
        tables = _day_tables(rng, bounds[lo:hi], counts[lo:hi], start_ns, end_ns)
        fresh = fresh_last_day if i == len(day_starts) - 1 else 0
        for name, table in tables.items():
            for path in _write_day(root, name, day, table, fresh, rng):
                totals["files"] += 1
                totals["bytes"] += path.stat().st_size
        totals["llm_call_rows"] += tables["llm_calls"].num_rows
        totals["span_rows"] += tables["spans"].num_rows
        _progress(i + 1, len(day_starts), f"day {_date(day)}")
    return Built(
        int(counts.sum()), tasks=tasks_total, first_day=_date(day_starts[0]), last_day=_date(day_starts[-1]), **totals
    )


def _day_done(root: Path, day: int) -> bool:
    """Resuming a build that was stopped: a day is done when all its tables have their file."""
    folders = [table_dir(root, t) / f"date={_date(day)}" for t in ("spans", "llm_calls", "outcomes")]
    if all(any(f.glob("compacted-*.parquet")) for f in folders):
        return True
    for folder in folders:  # a day half written is written again
        for path in folder.glob("*.parquet"):
            path.unlink()
    return False


def _call_counts(rng: np.random.Generator, tasks: int, calls: int) -> np.ndarray:
    """1..9 calls per task summing to exactly `calls` (5 on average)."""
    counts = np.full(tasks, calls // tasks, dtype=np.int64)
    counts[: calls - counts.sum()] += 1
    half = tasks // 2
    shift = np.minimum(rng.integers(0, 5, half), counts[:half] - 1)
    counts[:half] -= shift
    counts[half : 2 * half] += shift
    return rng.permutation(counts)


def _day_tables(
    rng: np.random.Generator, task_start: np.ndarray, counts: np.ndarray, start_ns: int, end_ns: int
) -> dict[str, pa.Table]:
    n_tasks, n = len(task_start), int(counts.sum())
    trace = _hex(rng, n_tasks, 16)
    root_id, tool_id = _hex(rng, n_tasks, 8), _hex(rng, n_tasks, 8)
    task_of = np.repeat(np.arange(n_tasks), counts)
    service = rng.integers(0, len(SERVICES), n_tasks)
    task_name = rng.integers(0, len(TASK_NAMES), n_tasks)
    # Prompt versions roll forward over the window: v1 → v4, so drift has something to find.
    era = ((task_start - start_ns) * 4 // max(end_ns - start_ns, 1)).clip(0, 3)
    prompt = rng.integers(0, len(PROMPTS), n_tasks)
    version = np.char.add(b"v", (era + 1 - (rng.random(n_tasks) < 0.2)).clip(1, 4).astype("S1"))
    # Calls: in sequence inside their task.
    call_id = _hex(rng, n, 8)
    model = rng.choice(len(MODELS), n, p=[0.45, 0.2, 0.15, 0.1, 0.1])
    latency = np.array([m[4] for m in MODELS])[model] * rng.lognormal(0, 0.5, n)
    offset = np.cumsum(latency) - latency
    first = np.repeat(np.cumsum(counts) - counts, counts)
    call_start = task_start[task_of] + ((offset - offset[first]) * 1e6).astype(np.int64) + 50_000_000
    call_end = call_start + (latency * 1e6).astype(np.int64)
    task_end = np.maximum.reduceat(call_end, np.cumsum(counts) - counts) + 80_000_000
    in_tok = rng.integers(200, 4000, n)
    out_tok = rng.integers(20, 800, n)
    price_in, price_out = np.array([m[2] for m in MODELS]), np.array([m[3] for m in MODELS])
    unpriced = np.array([m[2] == 0 for m in MODELS])[model]
    cost = np.where(unpriced, np.nan, (in_tok * price_in[model] + out_tok * price_out[model]) / 1e6)
    failed = rng.random(n) < 0.02
    refused = (rng.random(n) < np.where(model == 2, 0.08, 0.02)) & ~failed
    sig = np.where(
        era[task_of] >= 2,
        rng.choice(5, n, p=[0.1, 0.6, 0.1, 0.1, 0.1]),
        rng.choice(5, n, p=[0.6, 0.05, 0.15, 0.1, 0.1]),
    )
    words = _sentences(rng, n, 12)
    output = pc.binary_join_element_wise("Sure. About your ", words, ": here is what I found.", "")
    question = pc.binary_join_element_wise(
        '[{"role":"system","parts":[{"type":"text","content":"You are a helpful '
        'support agent. Answer briefly and cite sources."}]},{"role":"user",'
        '"parts":[{"type":"text","content":"',
        words,
        '"}]}]',
        "",
    )
    fmt = np.array(FORMATS)[sig]
    calls = {
        "trace_id": trace.take(task_of),
        "span_id": call_id,
        "parent_span_id": root_id.take(task_of),
        "start_time": _ts(call_start),
        "end_time": _ts(call_end),
        "duration_ms": latency,
        "service_name": _pick(SERVICES, service[task_of]),
        "project": pa.array(["bench"] * n),
        "scope_name": pa.array(["opentelemetry.instrumentation.openai_v2"] * n),
        "span_name": _pick([f"chat {m[0]}" for m in MODELS], model),
        "convention": pa.array(["otel_genai"] * n),
        "provider": _pick([m[1] for m in MODELS], model),
        "operation": pa.array(["chat"] * n),
        "request_model": _pick([m[0] for m in MODELS], model),
        "response_model": _pick([m[0] for m in MODELS], model),
        "input_tokens": in_tok,
        "output_tokens": out_tok,
        "total_tokens": in_tok + out_tok,
        "cost_usd": pa.array(cost, from_pandas=True),
        "cost_source": pa.array(np.where(unpriced, "unpriced", "table")),
        "input_messages": question,
        "output_text": output,
        "finish_reasons": pa.array([["stop"]] * n),
        "status": pa.array(np.where(failed, "error", "ok")),
        "error_type": pa.array(np.where(failed, "RateLimitError", None)),
        "is_streaming": rng.random(n) < 0.3,
        "time_to_first_token_ms": latency * 0.2,
        "prompt_name": _pick(PROMPTS, prompt[task_of]),
        "prompt_version": pa.array(version[task_of].astype(str)),
        "mapping": pa.array(["mapped"] * n),
        "received_at": _ts(call_end + 2 * 10**9),
        "refused": refused,
        "refusal_rule": pa.array(np.where(refused, "en.cannot_assist@1", None)),
        "output_format": pa.array(fmt),
        "output_signature": _pick(SIGNATURES, sig),
        "output_keys": pa.array([KEYS[s] for s in range(5)]).take(pa.array(sig)),
        "output_length": pc.utf8_length(output).cast(pa.int64()),
        "validation_status": pa.array(np.where(fmt == "json", np.where(rng.random(n) < 0.04, "fail", "pass"), None)),
    }
    llm = _framework_records(rng, _table(calls, LLM_CALLS_SCHEMA))
    status = np.where(rng.random(n_tasks) < 0.05, "error", np.where(rng.random(n_tasks) < 0.7, "ok", "unset"))
    outcome = rng.choice(
        np.array(['{"task.outcome":"success"}', '{"task.outcome":"failure"}', "{}"]), n_tasks, p=[0.6, 0.15, 0.25]
    )
    roots = {
        "trace_id": trace,
        "span_id": root_id,
        "name": _pick(TASK_NAMES, task_name),
        "kind": pa.array(["server"] * n_tasks),
        "start_time": _ts(task_start),
        "end_time": _ts(task_end),
        "duration_ms": (task_end - task_start) / 1e6,
        "status_code": pa.array(status),
        "service_name": _pick(SERVICES, service),
        "project": pa.array(["bench"] * n_tasks),
        "prompt_name": _pick(PROMPTS, prompt),
        "prompt_version": pa.array(version.astype(str)),
        "session_id": _hex(rng, n_tasks, 4),
        "genai_kind": pa.array(["agent"] * n_tasks),
        "attributes": pa.array(outcome),
        "received_at": _ts(task_end + 2 * 10**9),
    }
    tools = {
        "trace_id": trace,
        "span_id": tool_id,
        "parent_span_id": root_id,
        "name": pa.array(["tool lookup"] * n_tasks),
        "kind": pa.array(["internal"] * n_tasks),
        "start_time": _ts(task_start + 10_000_000),
        "end_time": _ts(task_start + 40_000_000),
        "duration_ms": np.full(n_tasks, 30.0),
        "service_name": _pick(SERVICES, service),
        "genai_kind": pa.array(["tool"] * n_tasks),
        "attributes": pa.array(['{"tool.name":"lookup"}'] * n_tasks),
        "received_at": _ts(task_start + 2 * 10**9),
    }
    llm_spans = (
        llm.select(
            [
                "trace_id",
                "span_id",
                "parent_span_id",
                "start_time",
                "end_time",
                "duration_ms",
                "service_name",
                "scope_name",
                "received_at",
            ]
        )
        .append_column("name", llm["span_name"])
        .append_column("genai_kind", pa.array(["llm"] * llm.num_rows))
    )
    spans = pa.concat_tables(
        [_table(roots, SPANS_SCHEMA), _table(tools, SPANS_SCHEMA), _table(_columns(llm_spans), SPANS_SCHEMA)]
    )
    judged = rng.random(n_tasks) < 0.1
    verdict_time = task_end[judged] + 3600 * 10**9
    outcomes = {
        "record_id": _hex(rng, int(judged.sum()), 8),
        "time": _ts(verdict_time),
        "trace_id": trace.filter(judged),
        "outcome": pa.array(rng.choice(["success", "failure"], int(judged.sum()))),
        "source": pa.array(["cli"] * int(judged.sum())),
        "received_at": _ts(verdict_time),
    }
    return {"spans": spans, "llm_calls": llm, "outcomes": _table(outcomes, OUTCOMES_SCHEMA)}


def _framework_records(rng: np.random.Generator, llm: pa.Table) -> pa.Table:
    """5% of calls also seen by a framework: a parent LLM span above the provider's span, same call."""
    mask = pa.array(rng.random(llm.num_rows) < 0.05)
    frame_id = _hex(rng, llm.num_rows, 8)
    parents = llm.filter(mask)
    for name, values in (
        ("span_id", frame_id.filter(mask)),
        ("span_name", pa.array(["ChatOpenAI"] * len(parents))),
        ("convention", pa.array(["openinference"] * len(parents))),
    ):
        parents = parents.set_column(parents.schema.get_field_index(name), name, values)
    index = llm.schema.get_field_index("parent_span_id")
    children = llm.set_column(index, "parent_span_id", pc.if_else(mask, frame_id, llm["parent_span_id"]))
    for name in ("prompt_name", "prompt_version"):  # the provider's span does not know the prompt; the view inherits it
        column = children[name]
        children = children.set_column(
            children.schema.get_field_index(name), name, pc.if_else(mask, pa.nulls(len(column), column.type), column)
        )
    return pa.concat_tables([children, parents])


def _write_day(root: Path, table: str, day: int, data: pa.Table, fresh: int, rng: np.random.Generator) -> list[Path]:
    if data.num_rows == 0:
        return []
    time_column = "time" if table == "outcomes" else "start_time"
    data = data.sort_by(time_column)
    folder = table_dir(root, table) / f"date={_date(day)}"
    if not fresh:
        return [write_file(folder, data, compacted=True, row_group_size=ROW_GROUP)]
    resent = data.take(pa.array(rng.choice(data.num_rows, max(data.num_rows // 100, 1), replace=False)))
    parts = np.array_split(np.arange(data.num_rows), fresh)
    files = [write_file(folder, data.take(pa.array(p)), tag=f"{k:020d}") for k, p in enumerate(parts)]
    return files + [write_file(folder, resent, tag=f"{fresh:020d}")]


def _table(columns: dict[str, object], schema: pa.Schema) -> pa.Table:
    fields = list(schema)
    n = len(next(iter(columns.values())))
    arrays = [pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type) for f in fields]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    return {name: table[name] for name in table.column_names}


def _hex(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    return pa.array(_HEX[raw].view(f"S{2 * nbytes}").ravel()).cast(pa.string())


def _sentences(rng: np.random.Generator, n: int, words: int) -> pa.Array:
    flat = pa.array(_WORDS[rng.integers(0, len(_WORDS), n * words)]).cast(pa.string())
    if isinstance(flat, pa.ChunkedArray):  # pyarrow splits large arrays
        flat = pa.concat_arrays(flat.chunks)
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * words + 1, words, dtype=np.int32)), flat)
    return pc.binary_join(lists, " ")


def _pick(values: list[str], index: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(values)).cast(pa.string())


def _ts(ns: np.ndarray) -> pa.Array:
    return pa.array(ns.astype(np.int64), pa.int64()).cast(_TS)


def _date(ns: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%d")


def _progress(done: int, total: int, what: str) -> None:
    width = 30
    bar = "#" * (width * done // total)
    end = "\n" if done == total or not sys.stderr.isatty() else ""
    if sys.stderr.isatty() or done == total or done % max(total // 10, 1) == 0:
        sys.stderr.write(f"\r  building [{bar:<{width}}] {done}/{total} {what}{end}")
        sys.stderr.flush()
