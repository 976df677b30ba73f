"""`vigil quality ...`: the quality signals' own tools (for now, measuring refusal detection)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from store.config import load_config
from store.quality import quality_columns
from store.quality.evaluate import DEFAULT_EVAL_FILE, Evaluation, evaluate, load_eval_set
from store.quality.refusal import compile_rules
from vigil.options import add_store_arguments, existing_store, load, progress


def add_commands(commands: argparse._SubParsersAction) -> None:
    quality = commands.add_parser("quality", help="refusal detection and other output-quality tools")
    sub = quality.add_subparsers(title="quality commands", metavar="COMMAND")
    quality.set_defaults(run=lambda _args: quality.print_help() or 2)
    evals = sub.add_parser(
        "eval-refusals",
        help="precision and recall of refusal detection on a labelled set",
        description="Run refusal detection over a labelled JSON Lines file ({text, label: refusal|answer, split?}) "
        "and print precision, recall, F1, the confusion counts per split and the misclassified outputs.",
    )
    evals.add_argument("--file", type=Path, default=DEFAULT_EVAL_FILE, help="labelled outputs (default: bundled set)")
    evals.add_argument("--config", metavar="FILE", help="TOML config whose [quality] rules to evaluate")
    evals.add_argument("--split", help="only this split (e.g. dev or heldout; default: every split and all)")
    evals.add_argument("--show", type=int, default=50, help="misclassified outputs to print (default 50)")
    evals.set_defaults(run=_run_eval)
    recompute = sub.add_parser(
        "recompute",
        help="recompute the quality columns of stored calls (after [quality] changes)",
        description="Rewrite the refusal, hedging, signature and validation columns of every stored LLM call and "
        "GenAI output message with the current [quality] rules. Files are replaced atomically; queries keep working.",
    )
    add_store_arguments(recompute)
    recompute.set_defaults(run=_run_recompute)
    explain = sub.add_parser(
        "explain",
        help="show the quality signals of one output",
        description="Print the refusal rule, hedging rule and structure signature vigil computes for TEXT "
        "(read from stdin when TEXT is -), with the [quality] rules of --config.",
        epilog="example: vigil quality explain \"I'm sorry, but I can't help with that.\"",
    )
    explain.add_argument("text", help="the output text, or - for stdin")
    explain.add_argument("--finish-reason", action="append", default=[], help="a finish reason (repeatable)")
    explain.add_argument("--config", metavar="FILE", help="TOML config whose [quality] rules to apply")
    explain.set_defaults(run=_run_explain)


def _run_eval(args: argparse.Namespace) -> int:
    quality = load_config(args.config).quality
    rules = compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)
    try:
        rows = load_eval_set(args.file)
    except (OSError, ValueError) as exc:
        print(f"vigil: cannot read the evaluation set: {exc}", file=sys.stderr)
        return 2
    results = evaluate(rows, rules)
    if args.split and args.split not in results:
        print(f"vigil: no split {args.split!r} in {args.file}; found: {', '.join(sorted(results))}", file=sys.stderr)
        return 2
    splits = [s for s in sorted(results) if s != "all"]
    if args.split:
        shown = [results[args.split]]
    else:  # every split, then all of them together when there is more than one
        shown = [results[s] for s in splits] + ([results["all"]] if len(splits) != 1 else [])
    print(f"{'split':<10}{'n':>5}{'tp':>5}{'fp':>5}{'fn':>5}{'tn':>5}{'precision':>11}{'recall':>8}{'f1':>7}")
    for r in shown:
        n = r.tp + r.fp + r.fn + r.tn
        print(
            f"{r.split:<10}{n:>5}{r.tp:>5}{r.fp:>5}{r.fn:>5}{r.tn:>5}{r.precision:>11.3f}{r.recall:>8.3f}{r.f1:>7.3f}"
        )
    _print_misclassified(shown[-1], args.show)
    return 0


def _run_recompute(args: argparse.Namespace) -> int:
    from store.quality.recompute import recompute_store

    config = load(args)
    quality = config.quality
    rules = compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)
    where = config.store if config.store.uri else existing_store(config)  # a uri: Delta, day by day
    unit = "days" if config.store.uri else "files"
    shown = progress("recomputed {done}/{total} " + ("tables" if config.store.uri else unit))
    summary = recompute_store(where, rules, shown)
    print(
        f"recomputed {summary.rows} rows in {summary.files} {unit}: {summary.changed} changed "
        f"({summary.rewritten} {unit} rewritten); {summary.refused} calls refused"
    )
    return 0


def _run_explain(args: argparse.Namespace) -> int:
    quality = load_config(args.config).quality
    rules = compile_rules(quality.refusal_rule_sets, quality.disabled_rules, quality.hedging)
    text = sys.stdin.read() if args.text == "-" else args.text
    columns = quality_columns(text, finish_reasons=args.finish_reason, rules=rules)
    for name in ("refused", "refusal_rule", "hedging_rule", "output_format", "output_signature", "output_keys"):
        print(f"{name:<17} {columns[name]}")
    print(f"{'output_length':<17} {columns['output_length']}")
    return 0


def _print_misclassified(result: Evaluation, limit: int) -> None:
    wrong = result.misclassified
    if not wrong:
        print("\nno misclassified outputs")
        return
    print(f"\nmisclassified ({len(wrong)}{', first ' + str(limit) if len(wrong) > limit else ''}):")
    for row in wrong[:limit]:
        verdict = f"false positive, rule {row['rule']}" if row["rule"] else "missed refusal"
        text = " ".join(row["text"].split())
        print(f"- [{row.get('split', '-')}] {row.get('id', '?')} ({verdict}): {text[:160]}")
