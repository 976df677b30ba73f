"""One replay run from start (or resume) to its final state row: the glue `vigil replay run` calls.

Comes in: the store root, `RunSettings` (a new run) or a run id (a resume, which reuses the run's
stored settings; only the budget may be raised), the provider, pricer and tracer. Goes out: the
run's final state (status, counts, spend, summary, verdict under the given gate rules). Must not:
call a case that already has a result in this run, or count the earlier spend of a resumed run
as free: it is read back from the results, plus the reservations of the calls that were in flight
when the run was killed (`replay.records` journal), and charged against the same ceiling.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any

from replay.budget import Budget
from replay.compare import summarize_pairs
from replay.gate import GateRules, evaluate_gate
from replay.prompts import find_prompt
from replay.providers import Provider
from replay.records import RunSettings, carry_unsettled, latest_run, run_results, unsettled_spend, write_run_state
from replay.runner import Progress, RunError, Runner, RunStats
from replay.sampler import load_set
from replay.tracing import ReplayTracer
from store.catalog import connect, refresh
from store.config import Config
from store.location import Destination
from store.pricing import Pricer
from store.quality.refusal import Rules


def new_run(
    root: Path, settings: RunSettings, run_id: str | None = None, config: Config | None = None
) -> tuple[str, int, RunSettings]:
    """Check the set and prompt version exist, write the run's `running` row. `config`: the store's
    (a Delta store's tables are read and written at its uri) and the views' rules; None: defaults.

    Returns (run_id, created_at, settings with the prompt name filled in from the set)."""
    con = connect(root, config)
    cases = load_set(con, settings.set_id)
    if settings.prompt_version is not None:
        name = settings.prompt_name or _single_prompt_name(cases)
        if find_prompt(con, name, settings.prompt_version) is None:
            raise RunError(
                f"prompt {name} has no version {settings.prompt_version!r} (pushed or seen in traces); "
                "push it with `vigil prompt push` or check `vigil prompt list`"
            )
        settings = dataclasses.replace(settings, prompt_name=name)
    run_id = run_id or f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    if latest_run(con, run_id) is not None:
        raise RunError(f"run {run_id} exists already; resume it with --resume {run_id}")
    created_at = time.time_ns()
    write_run_state(_store(root, config), run_id, created_at, settings, status="running", cases_total=len(cases))
    return run_id, created_at, settings


_RESUME_OVERRIDES = ("budget_usd", "budget_tokens", "base_url")


def resumed_run(root: Path, run_id: str, config: Config | None = None, **changes: Any) -> tuple[RunSettings, int]:
    """The stored settings of `run_id`, with the budget or the base URL (a server that moved) replaced."""
    if set(changes) - set(_RESUME_OVERRIDES):
        raise RunError(f"a resume may change only {', '.join(_RESUME_OVERRIDES)}: the rest is the run's own")
    row = latest_run(connect(root, config), run_id)
    if row is None:
        raise RunError(f"no replay run {run_id!r}; `vigil replay list` shows the runs")
    settings = RunSettings.from_json(row["settings"])
    settings = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
    return settings, int(row["created_at"].timestamp() * 1e9)


def execute_run(
    root: Path,
    run_id: str,
    created_at: int,
    settings: RunSettings,
    provider: Provider,
    pricer: Pricer,
    otlp_endpoint: str | None = None,
    rules: GateRules | None = None,
    progress: Progress | None = None,
    refusal_rules: Rules | None = None,
    config: Config | None = None,
) -> dict[str, Any]:
    con = connect(root, config)
    cases = load_set(con, settings.set_id)
    version = None
    if settings.prompt_version is not None:
        version = find_prompt(con, settings.prompt_name or _single_prompt_name(cases), settings.prompt_version)
    done = run_results(con, run_id)
    finished = {(r["trace_id"], r["span_id"]) for r in done}
    todo = [c for c in cases if (c["trace_id"], c["span_id"]) not in finished]
    lost_usd, lost_tokens = carry_unsettled(root, run_id, finished)  # calls in flight when it was killed
    budget = Budget(
        settings.budget_usd,
        settings.budget_tokens,
        spent_usd=sum(r["charged_usd"] or 0.0 for r in done) + lost_usd,
        spent_tokens=sum(r["charged_tokens"] or 0 for r in done) + lost_tokens,
    )
    stats = RunStats(total=len(cases), done_before=len(done), ok=sum(r["status"] == "ok" for r in done))
    stats.errors = len(done) - stats.ok
    tracer = ReplayTracer(otlp_endpoint, run_id, settings.set_id, provider.name)
    store = _store(root, config)
    runner = Runner(root, run_id, settings, provider, pricer, tracer, refusal_rules, store=store)
    try:
        prepared = runner.prepare(todo, version)
        stats = runner.run(prepared, stats, budget, progress)
    except Exception as exc:
        stats.status, stats.message = "failed", str(exc)
        _finish(root, config, con, run_id, created_at, settings, stats, rules)
        raise
    finally:
        tracer.close()
    return _finish(root, config, con, run_id, created_at, settings, stats, rules)


def _store(root: Path, config: Config | None) -> Destination:
    return root if config is None else config.store


def _finish(root, config, con, run_id, created_at, settings, stats: RunStats, rules: GateRules | None) -> dict:
    """Write the run's final state row: counts, spend, the summary and the verdict under `rules`."""
    refresh(con, root, config)  # replay_results may have had no file when the connection was opened
    results = run_results(con, run_id)
    lost_usd, lost_tokens = unsettled_spend(root, run_id, {(r["trace_id"], r["span_id"]) for r in results})
    summary = summarize_pairs(results, stats.total)
    state = {
        "status": stats.status,
        "cases_total": stats.total,
        "cases_ok": sum(r["status"] == "ok" for r in results),
        "cases_error": sum(r["status"] != "ok" for r in results),
        "cases_skipped": len(stats.skipped),
        "spent_usd": sum(r["charged_usd"] or 0.0 for r in results) + lost_usd,
        "spent_tokens": sum(r["charged_tokens"] or 0 for r in results) + lost_tokens,
        "summary": summary,
        "message": stats.message,
    }
    verdict = evaluate_gate(state, summary, rules or GateRules())
    write_run_state(_store(root, config), run_id, created_at, settings, verdict=verdict.verdict, **state)
    return state | {"verdict": verdict.verdict, "run_id": run_id, "skipped": stats.skipped}


def _single_prompt_name(cases: list[dict[str, Any]]) -> str:
    names = {c["prompt_name"] for c in cases if c.get("prompt_name")}
    if len(names) != 1:
        found = ", ".join(sorted(names)) or "none"
        raise RunError(f"the set's calls name prompts {found}: pass --prompt NAME to say which one the version is of")
    return names.pop()
