"""`vigil check` (alert rules, exit 1 when one fires) and `vigil drift` (output-structure drift report)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from store.config import ConfigError, parse_range
from vigil.cli import _common, _existing_store, _json_default, _load, _when

DRIFT_BY = ("service", "model", "prompt_version", "task")


def add_commands(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="evaluate the [[alerts]] rules; exit 1 when any fires",
        description="Evaluate every [[alerts]] rule of the config file over the store and print what fires. "
        "Exit status: 0 nothing fires, 1 at least one rule fires, 2 bad config or usage, so cron or CI can act. "
        "Firing rules with a webhook (the rule's, else [alerting] webhook_url) get a JSON POST.",
        epilog="example: vigil check --config vigil.toml --format json",
    )
    _common(check)
    check.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    check.add_argument("--now", metavar="ISO", help="evaluate as if it were this time (UTC unless it says otherwise)")
    check.add_argument("--no-webhook", action="store_true", help="print only; POST nothing")
    check.set_defaults(run=_run_check)

    drift = commands.add_parser(
        "drift",
        help="compare the structure of LLM outputs between two windows or two prompt versions",
        description="Output-structure drift per group: Jensen-Shannon distance and PSI of output signatures, "
        "PSI and Kolmogorov-Smirnov D of output lengths, JSON keys that appeared or vanished. A group with fewer "
        "than --min-samples calls on either side is insufficient_data, never drift.",
        epilog="examples: vigil drift --baseline 7d..1d --current 1d --by model\n"
        "          vigil drift --prompt-a support@v3 --prompt-b support@v4 --since 7d",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(drift)
    drift.add_argument("--baseline", metavar="FROM..TO", help="baseline window as ages, e.g. 7d..1d ([drift] baseline)")
    drift.add_argument("--current", metavar="FROM[..TO]", help="current window, e.g. 1d ([drift] current)")
    drift.add_argument("--prompt-a", metavar="VERSION", help="compare prompt version A (v3 or name@v3) ...")
    drift.add_argument("--prompt-b", metavar="VERSION", help="... with version B, over --since; instead of windows")
    drift.add_argument("--since", metavar="AGE|DATE", help="with --prompt-a/-b: only calls from then on")
    drift.add_argument("--by", choices=DRIFT_BY, help="one comparison per group (default: all calls together)")
    drift.add_argument("--min-samples", type=int, metavar="N", help="calls per side before judging ([drift])")
    drift.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    drift.set_defaults(run=_run_drift)


def _run_check(args: argparse.Namespace) -> int:
    import duckdb

    from store.alerts import evaluate_alerts
    from store.catalog import connect
    from store.webhooks import deliver_alerts

    config = _load(args)
    if not config.alerts:
        raise ConfigError("no [[alerts]] rules to check; add some to --config (see sample_data/config.example.toml)")
    now = _when(args.now, datetime.now(UTC), "--now") or datetime.now(UTC)
    con = connect(_existing_store(config), config)
    try:
        results = evaluate_alerts(con, config, now)
    except duckdb.Error as exc:
        print(f"vigil check: a metric query failed: {exc}", file=sys.stderr)
        return 2
    deliveries = [] if args.no_webhook else deliver_alerts(results, config, now)
    firing = [r for r in results if r.firing]
    if args.format == "json":
        report = {
            "evaluated_at": now.isoformat(),
            "firing": len(firing),
            "results": [r.to_dict() for r in results],
            "webhooks": [vars(d) for d in deliveries],
        }
        json.dump(report, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    else:
        rows = [
            {
                "status": r.status.upper() if r.firing else r.status,
                "rule": r.rule,
                "metric": r.metric,
                "group": r.group or "-",
                "value": _number(r.value),
                "threshold": f"{r.comparison} {_number(r.threshold)}",
                "samples": f"{r.samples}/{r.min_samples}",
                "window": r.window,
            }
            for r in results
        ]
        _print_rows(rows)
        print(f"{len(firing)} of {len(results)} evaluated (rule, group) pairs firing at {now.isoformat()}")
    for d in deliveries:
        if not d.delivered:
            print(f"vigil check: webhook {d.rule} → {d.url} failed ({d.attempts} tries): {d.error}", file=sys.stderr)
    return 1 if firing else 0


def _run_drift(args: argparse.Namespace) -> int:
    from store.catalog import connect
    from store.queries import run

    config = _load(args)
    now = datetime.now(UTC)
    if bool(args.prompt_a) != bool(args.prompt_b):
        raise ConfigError("give both --prompt-a and --prompt-b (or neither, to compare time windows)")
    if args.prompt_a:
        if args.baseline or args.current:
            raise ConfigError("--prompt-a/--prompt-b compare versions over --since; drop --baseline/--current")
        since = _when(args.since, now, "--since")
        sides = {"baseline_since": since, "baseline_until": now, "current_since": since, "current_until": now}
        sides |= {"baseline_prompt": args.prompt_a, "current_prompt": args.prompt_b}
    else:
        if args.since:
            raise ConfigError("--since goes with --prompt-a/--prompt-b; windows are set by --baseline and --current")
        b_old, b_new = parse_range(args.baseline or config.drift.baseline, "--baseline")
        c_old, c_new = parse_range(args.current or config.drift.current, "--current")
        sides = {"baseline_since": now - b_old, "baseline_until": now - b_new}
        sides |= {"current_since": now - c_old, "current_until": now - c_new}
    min_samples = args.min_samples or config.drift.min_samples
    if min_samples < 1:
        raise ConfigError("--min-samples must be at least 1")
    con = connect(_existing_store(config), config)
    group = args.by or "all"
    shared = sides | {"min_samples": min_samples}
    report = {
        "sides": {k: v for k, v in sides.items() if v is not None},
        "min_samples": min_samples,
        "signature": run(con, "signature_drift", group=group, threshold=config.drift.js_threshold, **shared),
        "length": run(con, "length_drift", group=group, threshold=config.drift.length_psi_threshold, **shared),
        "keys": run(con, "key_changes", group=group, **shared),
    }
    if args.format == "json":
        tables = {k: report[k].to_pylist() for k in ("signature", "length", "keys")}
        json.dump(report | tables, sys.stdout, default=_json_default)
        sys.stdout.write("\n")
        return 0
    print("baseline:", _side(sides, "baseline"), "  current:", _side(sides, "current"), f"  min samples: {min_samples}")
    for title, key in (("output signatures", "signature"), ("output length", "length"), ("JSON keys", "keys")):
        print(f"\n{title}:")
        rows = [{k: _number(v) for k, v in row.items()} for row in report[key].to_pylist()]
        if not rows:
            print("  nothing to compare (no calls with this information on either side)")
        _print_rows(rows)
    return 0


def _side(sides: dict[str, Any], side: str) -> str:
    since, until = sides[f"{side}_since"], sides[f"{side}_until"]
    prompt = sides.get(f"{side}_prompt")
    span = f"{since.isoformat(timespec='minutes') if since else '…'} → {until.isoformat(timespec='minutes')}"
    return f"{prompt} ({span})" if prompt else span


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else value


def _print_rows(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
