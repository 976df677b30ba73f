"""A run's state, summary and gate result → Markdown (a CI comment) or JSON. Pure text formatting."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from replay.gate import GateResult

_ICONS = {"pass": "✅", "regress": "❌", "incomplete": "⚠️"}


def report_json(run: dict[str, Any] | None, summary: dict[str, Any] | None, gate: GateResult) -> str:
    payload = {
        "run_id": run and run["run_id"],
        "status": run and run["status"],
        "verdict": gate.verdict,
        "exit_code": gate.exit_code,
        "reason": gate.reason,
        "checks": [dataclasses.asdict(c) for c in gate.checks],
        "run": _plain(run),
        "summary": summary,
    }
    return json.dumps(payload, indent=2, default=str)


def report_markdown(
    run: dict[str, Any] | None, summary: dict[str, Any] | None, gate: GateResult, worst: list[dict] | None = None
) -> str:
    if run is None:
        return f"## Replay gate: {_ICONS['incomplete']} incomplete\n\n{gate.reason}\n"
    lines = [
        f"## Replay {run['run_id']}: {_ICONS.get(gate.verdict, '')} {gate.verdict}",
        "",
        f"Prompt **{run['prompt_name'] or '(each call’s own)'}** → version **{run['prompt_version'] or 'unchanged'}**"
        f", model {run['model'] or 'unchanged'}, set `{run['set_id']}`; status {run['status']}.",
        f"Cases: {run['cases_total']} · ok {run['cases_ok'] or 0} · errors {run['cases_error'] or 0} · "
        f"skipped {run['cases_skipped'] or 0}. Spent ${run['spent_usd'] or 0:.4f} of "
        f"{_budget(run['budget_usd'], '$')} and {run['spent_tokens'] or 0:,} of "
        f"{_budget(run['budget_tokens'])} tokens.",
        "",
        f"**{gate.reason}**",
    ]
    if gate.checks:
        lines += ["", "| rule | value | threshold | holds | detail |", "|---|---|---|---|---|"]
        for c in gate.checks:
            value = "unknown" if c.value is None else f"{c.value:.4f}"
            lines.append(f"| {c.rule} | {value} | {c.threshold:g} | {'yes' if c.passed else 'no'} | {c.detail} |")
    if summary and summary["pairs"]:
        lines += ["", "| metric | old | new |", "|---|---|---|"]
        lines.append(f"| refusal rate | {_rate(summary['refusal_old'])} | {_rate(summary['refusal_new'])} |")
        vo, vn = summary["validation_fail_old"], summary["validation_fail_new"]
        lines.append(f"| validation failures | {_rate(vo)} | {_rate(vn)} |")
        lines.append(f"| structure kept | | {_rate(summary['structure_match'])} |")
        cost = summary["cost"]
        change = "n/a" if cost["change"] is None else f"{cost['change']:+.1%} ({_interval(cost, '%')})"
        lines.append(f"| cost (priced pairs) | ${cost['old']:.6f} | ${cost['new']:.6f}, {change} |")
        lo, ln = summary["latency_ms_old"], summary["latency_ms_new"]
        lines.append(f"| mean latency ms | {_mean(lo)} | {_mean(ln)} |")
        lines.append(f"| text similarity | | {_mean(summary['similarity'])} |")
        lines.append(f"| length ratio new/old | | {_mean(summary['length_ratio'])} |")
    if worst:
        lines += ["", "Largest changes:", ""]
        for row in worst:
            flags = [
                name
                for name, on in (
                    ("structure changed", not row["signature_kept"]),
                    ("refusal gained", row["refusal_gained"]),
                    ("refusal lost", row["refusal_lost"]),
                )
                if on
            ]
            lines.append(
                f"- `{row['trace_id']}/{row['span_id']}` ({', '.join(flags) or 'changed text'}): "
                f"`{row['old_signature']}` → `{row['new_signature']}`, similarity {row['similarity']:.2f}"
            )
    return "\n".join(lines) + "\n"


def _rate(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "n/a"
    return f"{rate['rate']:.1%} ({rate['count']}/{rate['n']}, {_interval(rate, '%')})"


def _interval(value: dict[str, Any], kind: str) -> str:
    if value.get("low") is None:
        return "no interval"
    return (
        f"95% CI {value['low']:.1%}–{value['high']:.1%}" if kind == "%" else f"{value['low']:.2f}–{value['high']:.2f}"
    )


def _mean(value: dict[str, Any]) -> str:
    if value["mean"] is None:
        return "n/a"
    ci = "" if value["low"] is None else f" (95% CI {value['low']:.2f}–{value['high']:.2f})"
    return f"{value['mean']:.2f}{ci}"


def _budget(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "no limit"
    return f"{unit}{value:.2f}" if unit else f"{value:,}"


def _plain(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {k: v for k, v in run.items() if k not in ("summary", "settings")}
