"""Handlers of `vigil prompt ...` and `vigil replay ...` (the flags are in `vigil.replay_cli`)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from store.config import Config, ConfigError, load_config
from vigil.options import existing_store, json_default, parse_when


def _friendly(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The replay wing's errors say what to do; show them like config errors (exit 2), not as tracebacks."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from replay.bundle import BundleError
        from replay.gate import GateError
        from replay.prompts import PromptError
        from replay.runner import RunError
        from replay.sampler import SampleError

        try:
            return handler(args)
        except (BundleError, GateError, PromptError, RunError, SampleError) as exc:
            raise ConfigError(str(exc)) from None

    return run


def _config(args: argparse.Namespace, replay: dict[str, Any] | None = None) -> Config:
    return load_config(args.config, overrides={"store": {"data_dir": args.data_dir}, "replay": replay or {}})


def _connect(args: argparse.Namespace):
    from store.catalog import connect

    config = _config(args)
    return existing_store(config), connect(existing_store(config), config)


def _print_rows(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> None:
    if fmt == "json":
        json.dump(rows, sys.stdout, default=json_default)
        sys.stdout.write("\n")
        return
    if not rows:
        print("(none)")
        return
    import duckdb
    import pyarrow as pa

    table = pa.Table.from_pylist([{c: r.get(c) for c in columns or list(rows[0])} for r in rows])
    duckdb.from_arrow(table).show(max_width=200, max_rows=200)


@_friendly
def _run_prompt_push(args: argparse.Namespace) -> int:
    from replay.prompts import load_prompt_file, push_prompt

    config = _config(args)
    root = Path(config.store.data_dir)
    root.mkdir(parents=True, exist_ok=True)
    from store.catalog import connect

    prompt = load_prompt_file(args.file, args.name, args.version, role=args.role, system=args.system, model=args.model)
    stored = push_prompt(config.store, connect(root, config), prompt)
    print(f"{'stored' if stored else 'unchanged (already stored)'}: prompt {prompt.name} version {prompt.version}")
    return 0


@_friendly
def _run_prompt_list(args: argparse.Namespace) -> int:
    from store.queries import run

    _, con = _connect(args)
    rows = run(con, "prompt_versions", prompt_name=args.name).to_pylist()
    columns = ["name", "version", "source", "role", "model", "calls", "first_seen", "last_seen"]
    _print_rows(rows, args.format, columns)
    return 0


@_friendly
def _run_prompt_show(args: argparse.Namespace) -> int:
    from store.queries import run

    _, con = _connect(args)
    rows = run(con, "prompt_versions", prompt_name=args.name).to_pylist()
    if args.version:
        rows = [r for r in rows if r["version"] == args.version]
    if not rows:
        raise ConfigError(
            f"no prompt {args.name}{' version ' + args.version if args.version else ''}; "
            "`vigil prompt list` shows what there is"
        )
    row = rows[-1]
    print(f"prompt {row['name']} version {row['version']} ({row['source']}, {row['calls']} calls seen)")
    for key in ("role", "model", "system_prompt", "params"):
        if row[key]:
            print(f"{key}: {row[key]}")
    print("template:\n" + (row["template"] or "(no template recorded)"))
    return 0


@_friendly
def _run_sample(args: argparse.Namespace) -> int:
    from replay.sampler import SampleSpec, sample_calls, save_set

    _, con = _connect(args)
    now = datetime.now(UTC)
    spec = SampleSpec(
        size=args.size,
        seed=args.seed,
        stratify=args.stratify,
        prompt_name=args.prompt_name,
        prompt_version=args.prompt_version,
        service=args.service,
        model=args.model,
        since=parse_when(args.since, now, "--since"),
        until=parse_when(args.until, now, "--until"),
        outcome=args.outcome,
        refused=args.refused,
        where=args.where,
    )
    cases = sample_calls(con, spec)
    set_id = save_set(_config(args).store, cases, spec, args.set_id)
    strata: dict[str, int] = {}
    for stratum in cases["stratum"].to_pylist():
        strata[stratum] = strata.get(stratum, 0) + 1
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(strata.items()))
    print(f"replay set {set_id}: {cases.num_rows} calls ({shown})")
    print(f"next: vigil replay run --set {set_id} --prompt-version NEW_VERSION")
    return 0


@_friendly
def _run_replay(args: argparse.Namespace) -> int:
    from replay.gate import GateRules
    from replay.providers import get_provider
    from replay.records import RunSettings
    from replay.session import execute_run, new_run, resumed_run
    from store.pricing import Pricer
    from store.quality.refusal import compile_rules

    flags = {k: getattr(args, k) for k in ("concurrency", "max_retries", "timeout_s", "default_max_tokens")}
    config = _config(args, flags | {"budget_usd": args.budget_usd, "budget_tokens": args.budget_tokens})
    root = existing_store(config)
    replay = config.replay
    if args.resume:
        changes = {"budget_usd": args.budget_usd, "budget_tokens": args.budget_tokens, "base_url": args.base_url}
        settings, created_at = resumed_run(root, args.resume, config, **changes)
        run_id = args.resume
    else:
        if not args.set_id:
            raise ConfigError("pass --set SET (from `vigil replay sample`) or --resume RUN")
        settings = RunSettings(
            set_id=args.set_id,
            prompt_name=args.prompt_name,
            prompt_version=args.prompt_version,
            provider=args.provider,
            base_url=args.base_url,
            model=args.model,
            concurrency=replay.concurrency,
            max_retries=replay.max_retries,
            backoff_base_s=replay.backoff_base_s,
            backoff_max_s=replay.backoff_max_s,
            timeout_s=replay.timeout_s,
            budget_usd=replay.budget_usd,
            budget_tokens=replay.budget_tokens,
            default_max_tokens=replay.default_max_tokens,
            allow_unpriced=args.allow_unpriced,
            baseline=args.baseline,
        )
        run_id, created_at, settings = new_run(root, settings, args.run_id, config)
    key_env = args.api_key_env or ("ANTHROPIC_API_KEY" if settings.provider == "anthropic" else "OPENAI_API_KEY")
    try:
        provider = get_provider(
            settings.provider, base_url=settings.base_url, api_key=os.environ.get(key_env), timeout_s=settings.timeout_s
        )
    except (ImportError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    endpoint = args.otlp_endpoint or replay.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    print(
        f"replay run {run_id}: set {settings.set_id} → {settings.prompt_name or '(own prompts)'} "
        f"{settings.prompt_version or '(unchanged)'}; resume with --resume {run_id}",
        file=sys.stderr,
    )
    quality = config.quality
    refusal_rules = compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)
    state = execute_run(
        root, run_id, created_at, settings, provider, Pricer.from_config(config.pricing), endpoint,
        GateRules.from_config(replay), _progress_bar(settings), refusal_rules, config,
    )  # fmt: skip
    _print_outcome(state, args.format)
    return 0 if state["status"] == "completed" else 2


def _print_outcome(state: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        json.dump(state, sys.stdout, default=json_default)
        sys.stdout.write("\n")
        return
    print(
        f"run {state['run_id']}: {state['status']}, verdict {state['verdict']} · {state['cases_ok']} ok, "
        f"{state['cases_error']} errors, {state['cases_skipped']} skipped of {state['cases_total']} · "
        f"spent ${state['spent_usd']:.4f}, {state['spent_tokens']:,} tokens"
    )
    if state["message"]:
        print(state["message"])
    for case in state["skipped"][:20]:
        print(f"  skipped {case}")
    print(f"details: vigil replay report --run {state['run_id']}; gate: vigil replay gate --run {state['run_id']}")


def _progress_bar(settings) -> Callable:
    """One updating stderr line on a terminal (a line per tenth otherwise): cases done and spend so far."""
    tty = sys.stderr.isatty()
    shown = {"step": -1}

    def show(stats) -> None:
        done = stats.ok + stats.errors
        budget = stats.budget
        width = 24
        filled = int(width * done / stats.total) if stats.total else width
        usd = f"${budget.spent_usd:.4f}" + (f"/${budget.usd:.2f}" if budget.usd is not None else "")
        tokens = f"{budget.spent_tokens:,}" + (f"/{budget.tokens:,}" if budget.tokens is not None else "")
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{stats.total} ok {stats.ok} err {stats.errors} · "
        line += f"{usd} · {tokens} tokens"
        if tty:
            print("\r" + line, end="\n" if done == stats.total else "", file=sys.stderr, flush=True)
        elif (step := done * 10 // max(1, stats.total)) != shown["step"]:
            shown["step"] = step
            print(line, file=sys.stderr, flush=True)

    return show


def _gate_inputs(args: argparse.Namespace):
    from replay.records import latest_run

    _, con = _connect(args)
    run = latest_run(con, args.run_id)
    summary = json.loads(run["summary"]) if run and run["summary"] else None
    return con, run, summary


@_friendly
def _run_gate(args: argparse.Namespace) -> int:
    from replay.gate import GateRules, evaluate_gate, load_rules
    from replay.report import report_json, report_markdown

    config = _config(args)
    rules = GateRules.from_config(config.replay)
    if args.rules:
        rules = load_rules(args.rules, rules)
    names = ("max_refusal_increase", "min_structure_match", "max_cost_increase", "max_error_rate")
    names += ("max_validation_fail_increase", "min_similarity")
    rules = rules.updated(**{name: getattr(args, name) for name in names})
    _, run, summary = _gate_inputs(args)
    result = evaluate_gate(run, summary, rules)
    if args.format == "json":
        print(report_json(run, summary, result))
    elif args.format == "markdown":
        print(report_markdown(run, summary, result), end="")
    else:
        print(f"{result.verdict} (exit {result.exit_code}): {result.reason}")
        for check in result.checks:
            print(f"  {'ok  ' if check.passed else 'FAIL'} {check.rule}: {check.detail}")
    return result.exit_code


@_friendly
def _run_report(args: argparse.Namespace) -> int:
    from replay.gate import GateRules, evaluate_gate
    from replay.report import report_json, report_markdown
    from store.queries import run as run_query

    con, run, summary = _gate_inputs(args)
    if run is None:
        raise ConfigError(f"no replay run {args.run_id!r}; `vigil replay list` shows the runs")
    result = evaluate_gate(run, summary, GateRules.from_config(_config(args).replay))
    if args.format == "json":
        print(report_json(run, summary, result))
        return 0
    pairs = run_query(con, "replay_run_results", run_id=args.run_id).to_pylist()
    worst = [p for p in pairs if p["status"] == "ok"][: args.top]
    print(report_markdown(run, summary, result, worst), end="")
    return 0


@_friendly
def _run_export(args: argparse.Namespace) -> int:
    from replay.bundle import export_bundle
    from store.pricing import Pricer

    config = _config(args)
    _, con = _connect(args)
    counts = export_bundle(con, args.run_id, args.output, Pricer.from_config(config.pricing))
    print(f"wrote {args.output}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


@_friendly
def _run_import(args: argparse.Namespace) -> int:
    from replay.bundle import import_bundle

    config = _config(args)
    Path(config.store.data_dir).mkdir(parents=True, exist_ok=True)
    counts = import_bundle(config.store, args.file)
    print(f"imported {args.file}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


@_friendly
def _run_list(args: argparse.Namespace) -> int:
    from store.catalog import fetch
    from store.queries import run

    _, con = _connect(args)
    if args.sets:
        sql = (
            "SELECT set_id, min(created_at) AS created_at, count(*) AS calls, any_value(spec) AS spec "
            "FROM replay_sets GROUP BY set_id ORDER BY created_at DESC"
        )
        _print_rows(fetch(con, sql).to_pylist(), args.format)
        return 0
    rows = run(con, "replay_runs", run_id=None).to_pylist()
    for row in rows:
        row["spent_usd"] = None if row["spent_usd"] is None else round(row["spent_usd"], 6)
    columns = ["run_id", "created_at", "set_id", "prompt_name", "prompt_version", "model", "status", "verdict"]
    _print_rows(rows, args.format, columns + ["cases_total", "cases_ok", "cases_error", "spent_usd"])
    return 0
