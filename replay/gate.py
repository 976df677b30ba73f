"""A run's rates + rules → a verdict a CI job can exit with: 0 holds, 1 regresses, 2 incomplete or errored.

Comes in: the run's state row (status, case counts) and its summary (`replay.compare.summarize_pairs`),
and `GateRules` (from `[replay]` config defaults, a TOML rules file, then flags). Goes out: a
`GateResult` with one `Check` per rule. Must not: pass a run it cannot judge. A run that is not
`completed`, that skipped cases, whose error share exceeds `max_error_rate`, or that has no
comparable pair fails closed with exit 2; a rule whose metric is unknown (no priced pair for
the cost rule) fails closed too. Rules compare point estimates; the intervals are reported beside.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.config import ReplayConfig

PASS, REGRESS, INCOMPLETE = "pass", "regress", "incomplete"
EXIT_CODES = {PASS: 0, REGRESS: 1, INCOMPLETE: 2}


class GateError(ValueError):
    """A rules file that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class GateRules:
    max_refusal_increase: float | None = 0.02
    min_structure_match: float | None = 0.95
    max_cost_increase: float | None = 0.10
    max_error_rate: float = 0.0
    max_validation_fail_increase: float | None = None
    min_similarity: float | None = None

    @classmethod
    def from_config(cls, config: ReplayConfig) -> GateRules:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dataclasses.asdict(config).items() if k in names})

    def updated(self, **values: float | None) -> GateRules:
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


def load_rules(path: Path, base: GateRules) -> GateRules:
    """A TOML file of rule = threshold (top level or under [gate]); unknown rules are an error."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise GateError(f"rules file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise GateError(f"rules file {path} is not valid TOML: {exc}") from None
    data = data.get("gate", data)
    names = {f.name for f in dataclasses.fields(GateRules)}
    unknown = set(data) - names
    if unknown:
        raise GateError(f"{path}: unknown rule(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()):
        raise GateError(f"{path}: every rule needs a number")
    return dataclasses.replace(base, **{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class Check:
    rule: str
    threshold: float
    value: float | None
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    verdict: str
    exit_code: int
    reason: str
    checks: list[Check]


def evaluate_gate(run: dict[str, Any] | None, summary: dict[str, Any] | None, rules: GateRules) -> GateResult:
    if run is None or summary is None:
        return GateResult(INCOMPLETE, 2, "no such run, or it never finished", [])
    problems = []
    if run["status"] != "completed":
        problems.append(f"run status is {run['status']}")
    missing = summary["cases_total"] - summary["results"]
    if missing > 0:
        problems.append(f"{missing} of {summary['cases_total']} cases have no result")
    error_rate = summary["error_rate"]["rate"] or 0.0
    if error_rate > rules.max_error_rate:
        problems.append(f"{summary['errors']} calls errored ({error_rate:.1%} > max_error_rate {rules.max_error_rate})")
    if summary["pairs"] == 0:
        problems.append("no pair to compare")
    checks = _checks(summary, rules)
    if problems:
        return GateResult(INCOMPLETE, 2, "; ".join(problems), checks)
    failed = [c for c in checks if not c.passed]
    if failed:
        return GateResult(REGRESS, 1, "; ".join(f"{c.rule}: {c.detail}" for c in failed), checks)
    return GateResult(PASS, 0, "every rule holds", checks)


def _checks(summary: dict[str, Any], rules: GateRules) -> list[Check]:
    checks = []
    old, new = summary["refusal_old"]["rate"], summary["refusal_new"]["rate"]
    if rules.max_refusal_increase is not None:
        delta = None if old is None or new is None else new - old
        checks.append(_at_most("max_refusal_increase", delta, rules.max_refusal_increase, f"{_pct(old)} → {_pct(new)}"))
    if rules.min_structure_match is not None:
        match = summary["structure_match"]
        checks.append(_at_least("min_structure_match", match["rate"], rules.min_structure_match, _ci(match)))
    if rules.max_cost_increase is not None:
        cost = summary["cost"]
        detail = f"${cost['old']:.6f} → ${cost['new']:.6f} over {cost['n']} priced pairs"
        checks.append(_at_most("max_cost_increase", cost["change"], rules.max_cost_increase, detail))
    if rules.max_validation_fail_increase is not None:
        vo, vn = summary["validation_fail_old"]["rate"], summary["validation_fail_new"]["rate"]
        delta = 0.0 if vo is None and vn is None else (vn or 0.0) - (vo or 0.0)
        limit = rules.max_validation_fail_increase
        checks.append(_at_most("max_validation_fail_increase", delta, limit, f"{_pct(vo)} → {_pct(vn)}"))
    if rules.min_similarity is not None:
        similarity = summary["similarity"]["mean"]
        checks.append(_at_least("min_similarity", similarity, rules.min_similarity, "mean text similarity"))
    return checks


def _at_most(rule: str, value: float | None, threshold: float, detail: str) -> Check:
    passed = value is not None and value <= threshold + 1e-12
    return Check(rule, threshold, value, passed, f"{_num(value)} (≤ {threshold:g} allowed); {detail}")


def _at_least(rule: str, value: float | None, threshold: float, detail: str) -> Check:
    passed = value is not None and value >= threshold - 1e-12
    return Check(rule, threshold, value, passed, f"{_num(value)} (≥ {threshold:g} required); {detail}")


def _num(value: float | None) -> str:
    return "unknown" if value is None else f"{value:+.4f}" if value < 0 else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ci(rate: dict[str, Any]) -> str:
    if rate["low"] is None:
        return f"{rate['count']}/{rate['n']}"
    return f"{rate['count']}/{rate['n']}, 95% CI {rate['low']:.1%}–{rate['high']:.1%}"
