"""compare_pair, the run rates and the gate on crafted runs whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.compare import compare_pair, mean_t, relative_change, summarize_pairs, wilson
from replay.gate import GateError, GateRules, evaluate_gate, load_rules
from replay.report import report_json, report_markdown


def test_compare_pair_sees_structure_refusal_validation_and_deltas() -> None:
    old = {"text": '{"answer": "yes", "score": 1}', "cost_usd": 0.002, "latency_ms": 900.0}
    new = {"text": "I can't help with that.", "cost_usd": 0.003, "latency_ms": 600.0}
    pair = compare_pair(old, new, {"response_format": {"type": "json_object"}})
    assert pair["signature_kept"] is False and pair["old_signature"] != pair["new_signature"]
    assert pair["old_refusal_rule"] is None and pair["new_refusal_rule"] is not None
    assert pair["refusal_gained"] and not pair["refusal_lost"]
    assert (pair["old_validation"], pair["new_validation"]) == ("pass", "fail") and pair["new_validation_error"]
    assert pair["cost_delta_usd"] == pytest.approx(0.001) and pair["latency_delta_ms"] == -300.0
    assert pair["length_ratio"] == pytest.approx(len(new["text"]) / len(old["text"]))

    same = compare_pair({"text": "Plain answer."}, {"text": "Plain answer.", "refusal": "no"}, None)
    assert same["similarity"] == 1.0 and same["old_validation"] is None
    assert same["refusal_gained"]  # the provider's refusal field counts even when the text is the same


def test_interval_helpers() -> None:
    low, high = wilson(8, 10)  # reference values of the 95% Wilson interval for 8/10
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (None, None)
    assert wilson(0, 20)[0] == pytest.approx(0.0, abs=1e-12) and wilson(20, 20)[1] == pytest.approx(1.0)
    m = mean_t([1.0, 2.0, 3.0, 4.0, 5.0])
    assert m["mean"] == 3.0 and m["high"] - m["mean"] == pytest.approx(2.776 * (2.5**0.5) / 5**0.5)
    change = relative_change([1.0] * 10, [1.2] * 10)
    assert change["change"] == pytest.approx(0.2) and change["low"] == pytest.approx(0.2)


def crafted_rows(n: int = 20, gained: int = 2, changed: int = 1, cost_factor: float = 1.05) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "status": "ok",
                "old_refusal_rule": "en.cannot_assist@1" if i == 0 else None,  # one refusal before
                "new_refusal_rule": "en.cannot_assist@1" if i == 0 or 1 <= i <= gained else None,
                "refusal_gained": 1 <= i <= gained,
                "refusal_lost": False,
                "signature_kept": i >= changed,
                "old_validation": None,
                "new_validation": None,
                "similarity": 0.8,
                "length_ratio": 1.0,
                "old_cost_usd": 0.001,
                "new_cost_usd": 0.001 * cost_factor,
                "old_latency_ms": 500.0,
                "new_latency_ms": 400.0,
            }
        )
    return rows


def test_summary_rates_match_the_crafted_run() -> None:
    summary = summarize_pairs(crafted_rows())
    assert summary["pairs"] == 20 and summary["errors"] == 0
    assert summary["refusal_old"]["rate"] == 0.05 and summary["refusal_new"]["rate"] == 0.15
    assert summary["refusal_gained"] == 2 and summary["structure_match"]["rate"] == 0.95
    assert summary["structure_match"]["low"] == pytest.approx(wilson(19, 20)[0])
    assert summary["cost"]["change"] == pytest.approx(0.05)
    assert summary["latency_ms_new"]["mean"] == 400.0 and summary["similarity"]["mean"] == pytest.approx(0.8)


def _run(status: str = "completed") -> dict:
    return {"run_id": "r", "status": status, "prompt_name": "p", "prompt_version": "v2", "model": None,
            "set_id": "s", "cases_total": 20, "cases_ok": 20, "cases_error": 0, "cases_skipped": 0,
            "spent_usd": 0.02, "budget_usd": 1.0, "spent_tokens": 100, "budget_tokens": 1000}  # fmt: skip


def test_gate_pass_regress_and_fail_closed() -> None:
    rules = GateRules(max_refusal_increase=0.02, min_structure_match=0.95, max_cost_increase=0.10)
    holds = summarize_pairs(crafted_rows(gained=0))
    assert evaluate_gate(_run(), holds, rules).exit_code == 0
    refuses = evaluate_gate(_run(), summarize_pairs(crafted_rows(gained=2)), rules)
    assert refuses.exit_code == 1 and "max_refusal_increase" in refuses.reason
    pricier = evaluate_gate(_run(), summarize_pairs(crafted_rows(gained=0, cost_factor=1.2)), rules)
    assert pricier.exit_code == 1 and [c.rule for c in pricier.checks if not c.passed] == ["max_cost_increase"]
    reshaped = evaluate_gate(_run(), summarize_pairs(crafted_rows(gained=0, changed=2)), rules)
    assert reshaped.exit_code == 1 and "min_structure_match" in reshaped.reason

    assert evaluate_gate(_run("running"), holds, rules).exit_code == 2
    assert evaluate_gate(_run("budget_exhausted"), holds, rules).exit_code == 2
    assert evaluate_gate(None, None, rules).exit_code == 2
    short = summarize_pairs(crafted_rows(gained=0), cases_total=25)
    assert evaluate_gate(_run(), short, rules).exit_code == 2  # five cases have no result
    errored = summarize_pairs(crafted_rows(gained=0) + [{"status": "error"}])
    assert evaluate_gate(_run(), errored, rules).exit_code == 2
    assert evaluate_gate(_run(), errored, GateRules(max_error_rate=0.1)).exit_code == 0
    unpriced = summarize_pairs([r | {"old_cost_usd": None} for r in crafted_rows(gained=0)])
    assert evaluate_gate(_run(), unpriced, rules).exit_code == 1  # a cost rule it cannot check does not pass


def test_rules_file_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text("[gate]\nmax_refusal_increase = 0.2\nmin_similarity = 0.5\n")
    rules = load_rules(path, GateRules())
    assert rules.max_refusal_increase == 0.2 and rules.min_similarity == 0.5 and rules.min_structure_match == 0.95
    path.write_text("max_refusal = 0.2\n")
    with pytest.raises(GateError, match="unknown rule"):
        load_rules(path, GateRules())

    summary = summarize_pairs(crafted_rows())
    result = evaluate_gate(_run(), summary, rules)
    assert result.exit_code == 0
    markdown = report_markdown(_run(), summary, result)
    assert "| max_refusal_increase | 0.1000 | 0.2 | yes |" in markdown and "15.0% (3/20" in markdown
    payload = json.loads(report_json(_run(), summary, result))
    assert payload["verdict"] == "pass" and payload["summary"]["refusal_new"]["count"] == 3
