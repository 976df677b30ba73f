"""`vigil prompt ...` and `vigil replay ...`: the flags (handlers in `vigil.replay_commands`).

Settings come from `[replay]` in the config (defaults < TOML < env VIGIL_REPLAY_* < flags). The
provider's API key is read from the environment variable named by --api-key-env (default
OPENAI_API_KEY; none is needed for a local server); the replay's own calls are traced to
--otlp-endpoint, else [replay] otlp_endpoint, else OTEL_EXPORTER_OTLP_ENDPOINT, else not at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli import _DATA_DIR_HELP
from vigil.replay_commands import (
    _run_export,
    _run_gate,
    _run_import,
    _run_list,
    _run_prompt_list,
    _run_prompt_push,
    _run_prompt_show,
    _run_replay,
    _run_report,
    _run_sample,
)

_FORMATS = ["text", "markdown", "json"]


def add_commands(commands: argparse._SubParsersAction) -> None:
    _prompt_commands(commands.add_parser("prompt", help="the prompt registry: push, list and show versions"))
    _replay_commands(
        commands.add_parser(
            "replay",
            help="replay sampled production calls against a new prompt version, compare, gate",
            description="Sample stored LLM calls, re-send them with a new prompt version, compare and gate.",
        )
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help=_DATA_DIR_HELP)
    parser.add_argument("--config", metavar="FILE", help="TOML config file ([replay] holds the replay settings)")


def _prompt_commands(prompt: argparse.ArgumentParser) -> None:
    sub = prompt.add_subparsers(title="commands", metavar="COMMAND")
    push = sub.add_parser(
        "push",
        help="store a prompt version",
        description='Store version V of prompt NAME from FILE: TOML (template = "... {variable} ...", optional '
        'role = user|system, system = "...", model = "...", [params] temperature/max_tokens/...) or any other '
        "file as the plain template. Versions are immutable.",
    )
    _common(push)
    push.add_argument("name")
    push.add_argument("--version", required=True, help="the version label, e.g. v2")
    push.add_argument("file", type=Path, help="prompt file (.toml, or plain text)")
    push.add_argument("--role", choices=["user", "system"], help="which message the template renders")
    push.add_argument("--system", help="a system prompt replacing the call's system message")
    push.add_argument("--model", help="the model this version runs on")
    push.set_defaults(run=_run_prompt_push)
    listing = sub.add_parser("list", help="pushed versions and versions seen in traces")
    _common(listing)
    listing.add_argument("--name", help="only this prompt")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(run=_run_prompt_list)
    show = sub.add_parser("show", help="print one version (the newest when --version is omitted)")
    _common(show)
    show.add_argument("name")
    show.add_argument("--version")
    show.set_defaults(run=_run_prompt_show)


def _replay_commands(replay: argparse.ArgumentParser) -> None:
    sub = replay.add_subparsers(title="commands", metavar="COMMAND")
    sample = sub.add_parser(
        "sample",
        help="draw a reproducible sample of stored calls as a replay set",
        description="Pick stored LLM calls by filters, randomly or stratified, with a seed (same seed, same set).",
        epilog="example: vigil replay sample --prompt support-answer --version v1 --since 7d -n 200 --seed 7",
    )
    _common(sample)
    sample.add_argument("-n", "--size", type=int, default=100, help="calls to draw (default 100)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--stratify", choices=["model", "prompt_version"], help="draw evenly across these strata")
    sample.add_argument("--prompt", dest="prompt_name", help="prompt name")
    sample.add_argument("--version", dest="prompt_version", help="prompt version")
    sample.add_argument("--service", help="service name")
    sample.add_argument("--model", help="request or response model")
    sample.add_argument("--since", metavar="AGE|DATE", help="7d, 12h, 2w or 2026-11-01")
    sample.add_argument("--until", metavar="AGE|DATE")
    sample.add_argument("--outcome", choices=["success", "failure", "unknown"], help="the task's outcome")
    sample.add_argument("--refused", action=argparse.BooleanOptionalAction, help="only refused (or not refused) calls")
    sample.add_argument("--where", metavar="SQL", help="any SQL condition over llm_calls columns (and task_outcome)")
    sample.add_argument("--set-id", help="name the set (default: a fresh id)")
    sample.set_defaults(run=_run_sample)

    run = sub.add_parser(
        "run",
        help="re-send a replay set with a new prompt version and compare",
        description="Rebuild each call of the set, apply the prompt version, call the model, compare, store. "
        "Stops before the budget; a killed run continues with --resume RUN without paying twice.",
        epilog="example: vigil replay run --set S --prompt-version v2 --base-url http://127.0.0.1:8000/v1",
    )
    _common(run)
    run.add_argument("--set", dest="set_id", help="the replay set (see `vigil replay list --sets`)")
    run.add_argument("--prompt", dest="prompt_name", help="prompt name (default: the one the set's calls name)")
    run.add_argument("--prompt-version", help="candidate version (omit to re-run the calls as they were)")
    run.add_argument("--model", help="send every call to this model instead of its own")
    run.add_argument("--provider", default="openai", choices=["openai"], help="openai: any OpenAI-compatible API")
    run.add_argument("--base-url", help="API base URL, e.g. http://127.0.0.1:8000/v1 (default: OpenAI's)")
    run.add_argument("--api-key-env", default="OPENAI_API_KEY", help="env variable holding the API key")
    run.add_argument("--concurrency", type=int, help="calls in flight (default [replay] concurrency = 4)")
    run.add_argument("--max-retries", type=int, help="retries after 429/5xx/timeouts (default 4)")
    run.add_argument("--timeout", type=float, dest="timeout_s", help="seconds per call (default 60)")
    run.add_argument("--budget-usd", type=float, help="hard USD ceiling of the run (default [replay] budget_usd)")
    run.add_argument("--budget-tokens", type=int, help="hard token ceiling (default [replay] budget_tokens)")
    run.add_argument("--max-tokens", type=int, dest="default_max_tokens", help="max_tokens when the call set none")
    run.add_argument("--allow-unpriced", action="store_true", help="run models without a price (tokens cap only)")
    run.add_argument("--run-id", help="name the run (default: a fresh id)")
    run.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped or killed run with its own settings (only --budget-*, --base-url change)",
    )
    run.add_argument("--otlp-endpoint", help="trace the replay's calls here (default OTEL_EXPORTER_OTLP_ENDPOINT)")
    run.add_argument("--format", choices=_FORMATS, default="text", help="how to print the outcome")
    run.set_defaults(run=_run_replay)

    gate = sub.add_parser(
        "gate",
        help="exit 0 if the new version holds, 1 if it regresses, 2 if the run is incomplete or errored",
        description="Judge a run against rules: [replay] defaults < --rules FILE (TOML rule = number) < flags.",
    )
    _common(gate)
    gate.add_argument("--run", dest="run_id", required=True)
    gate.add_argument("--rules", type=Path, help="TOML file: max_refusal_increase = 0.02, min_structure_match = ...")
    for rule, text in (
        ("max-refusal-increase", "largest allowed rise of the refusal rate (absolute, 0.02 = 2 points)"),
        ("min-structure-match", "smallest share of answers that keep their structure"),
        ("max-cost-increase", "largest relative cost rise (0.10 = +10%%)"),
        ("max-error-rate", "largest share of calls that may error (above: exit 2)"),
        ("max-validation-fail-increase", "largest rise of the validation failure rate"),
        ("min-similarity", "smallest mean text similarity (0..1)"),
    ):
        gate.add_argument(f"--{rule}", type=float, help=text)
    gate.add_argument("--format", choices=_FORMATS, default="text")
    gate.set_defaults(run=_run_gate)

    report = sub.add_parser("report", help="a run's rates and its largest changes (Markdown or JSON)")
    _common(report)
    report.add_argument("--run", dest="run_id", required=True)
    report.add_argument("--format", choices=["markdown", "json"], default="markdown")
    report.add_argument("--top", type=int, default=5, help="largest changes listed (default 5)")
    report.set_defaults(run=_run_report)

    export = sub.add_parser("export", help="write a run as one self-contained bundle file")
    _common(export)
    export.add_argument("--run", dest="run_id", required=True)
    export.add_argument("-o", "--output", type=Path, required=True, help="bundle file to write (.json.gz)")
    export.set_defaults(run=_run_export)

    imported = sub.add_parser("import", help="load a bundle written by `vigil replay export` into this store")
    _common(imported)
    imported.add_argument("file", type=Path)
    imported.set_defaults(run=_run_import)

    listing = sub.add_parser("list", help="replay runs (or sets, with --sets)")
    _common(listing)
    listing.add_argument("--sets", action="store_true", help="list replay sets instead of runs")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    listing.set_defaults(run=_run_list)
