"""Replay runs through the real `openai` SDK against a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from replay.gate import GateRules, evaluate_gate
from replay.prompts import PromptVersion, push_prompt
from replay.providers.openai import OpenAIProvider
from replay.records import RunSettings, latest_run, run_results
from replay.runner import RunError
from replay.sampler import SampleSpec, sample_calls, save_set
from replay.session import execute_run, new_run
from store.catalog import connect
from store.pricing import Pricer
from store.queries import run as run_query
from tests.llm_server import ScriptedLLM
from tests.replay_store import write_calls

V2 = PromptVersion("support-answer", "v2", "Reply kindly to: {question}")


def make_store(root: Path, n: int = 6, **fields: Any) -> str:
    write_calls(root, n, **fields)
    push_prompt(root, connect(root), V2)
    spec = SampleSpec(size=n, seed=1)
    return save_set(root, sample_calls(connect(root), spec), spec, "s1")


def replay(
    root: Path, server: ScriptedLLM, timeout_s: float = 10.0, pricer: Pricer | None = None, **settings: Any
) -> dict[str, Any]:
    chosen = {"set_id": "s1", "prompt_name": None, "prompt_version": "v2", "backoff_base_s": 0.01} | settings
    run_settings = RunSettings(base_url=server.base_url, timeout_s=timeout_s, **chosen)
    run_id, created, run_settings = new_run(root, run_settings)
    provider = OpenAIProvider(base_url=server.base_url, api_key=None, timeout_s=timeout_s)
    return execute_run(root, run_id, created, run_settings, provider, pricer or Pricer())


def test_a_run_sends_the_new_prompt_and_stores_compared_pairs(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root)
    with ScriptedLLM() as server:
        state = replay(root, server)
    assert state["status"] == "completed" and state["cases_ok"] == 6 and state["verdict"] == "pass"
    sent = [b["messages"][-1]["content"] for b in server.bodies]
    assert all(text.startswith("Reply kindly to: where is my order?") for text in sent)
    assert all(b["max_tokens"] == 100 and b["temperature"] == 0.2 for b in server.bodies)

    con = connect(root)
    runs = run_query(con, "replay_runs", run_id=state["run_id"]).to_pylist()
    assert len(runs) == 1 and runs[0]["status"] == "completed" and runs[0]["structure_match_rate"] == 1.0
    pairs = run_query(con, "replay_run_results", run_id=state["run_id"]).to_pylist()
    assert len(pairs) == 6
    pair = pairs[0]
    assert pair["new_output"].startswith("Here is the answer to: Reply kindly") and pair["signature_kept"]
    assert pair["new_cost_usd"] > 0 and pair["input_tokens"] > 0 and 0 < pair["similarity"] < 1
    assert pair["old_prompt_version"] == "v1" and pair["new_prompt_version"] == "v2"


def test_retries_only_for_retryable_statuses(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root)
    failures = {"case-1": [429, 429], "case-2": [500], "case-3": [400], "case-4": [503] * 9, "case-5": [404]}
    with ScriptedLLM(failures=failures) as server:
        state = replay(root, server, max_retries=2)
    per_case = server.count()
    assert per_case["case-0"] == 1
    assert per_case["case-1"] == 3 and server.count(429)["case-1"] == 2  # two 429s, then the answer
    assert per_case["case-2"] == 2
    assert per_case["case-3"] == 1 and per_case["case-5"] == 1  # a 400 or 404 is never retried
    assert per_case["case-4"] == 3 and server.count(503)["case-4"] == 3  # 1 try + max_retries
    results = {r["trace_id"]: r for r in run_results(connect(root), state["run_id"])}
    assert results[f"{3:032x}"]["error_type"] == "http_400" and results[f"{3:032x}"]["attempts"] == 1
    assert results[f"{4:032x}"]["error_type"] == "http_503" and results[f"{4:032x}"]["attempts"] == 3
    assert results[f"{1:032x}"]["status"] == "ok" and results[f"{1:032x}"]["attempts"] == 3
    assert state["cases_ok"] == 3 and state["cases_error"] == 3
    # errored calls fail the gate closed (exit 2), whatever the rates say
    run = latest_run(connect(root), state["run_id"])
    assert evaluate_gate(run, state["summary"], GateRules()).exit_code == 2


def test_a_timeout_is_retried_and_its_worst_case_counted_as_spent(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=2)
    with ScriptedLLM(slow={"case-0": [1.5]}) as server:
        state = replay(root, server, timeout_s=0.5)
    assert server.count()["case-0"] == 2 and state["status"] == "completed"
    row = next(r for r in run_results(connect(root), state["run_id"]) if r["trace_id"] == f"{0:032x}")
    assert row["status"] == "ok" and row["attempts"] == 2
    assert row["charged_usd"] > 2 * row["new_cost_usd"]  # the timed-out attempt may have been billed


def test_the_budget_stops_the_run_before_the_ceiling(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=10)
    # worst case per call ≈ 180 input tokens at $0.15/M + 100 output at $0.60/M ≈ $0.000087, while a call
    # really costs ≈ $0.000013: each reservation must fit beside what was spent, so only a few calls start
    with ScriptedLLM() as server:
        state = replay(root, server, budget_usd=0.0001, concurrency=2)
    assert state["status"] == "budget_exhausted" and 0 < state["cases_skipped"] < 10
    assert state["spent_usd"] <= 0.0001
    assert len(server.requests) == state["cases_ok"] == 10 - state["cases_skipped"]
    assert len(state["skipped"]) == state["cases_skipped"]
    run = latest_run(connect(root), state["run_id"])
    assert evaluate_gate(run, state["summary"], GateRules()).exit_code == 2  # incomplete: fails closed


def test_the_token_budget_holds_too(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=5)
    with ScriptedLLM() as server:
        state = replay(root, server, budget_tokens=300, budget_usd=None)  # worst case ≈ 280 a call
    assert state["status"] == "budget_exhausted" and 0 < state["spent_tokens"] <= 300


def test_an_unpriced_model_needs_consent(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=2, request_model="house-model-7b", response_model="house-model-7b")
    with ScriptedLLM() as server:
        with pytest.raises(RunError, match="no price"):
            replay(root, server)
        assert server.requests == []
        state = replay(root, server, allow_unpriced=True)
    assert state["status"] == "completed" and state["spent_usd"] == 0 and state["spent_tokens"] > 0


def test_a_missing_variable_is_an_error_row_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=2)
    push_prompt(root, connect(root), PromptVersion("support-answer", "v3", "Hi {customer_name}: {question}"))
    with ScriptedLLM() as server:
        state = replay(root, server, prompt_version="v3")
    assert server.requests == [] and state["cases_error"] == 2
    assert all("customer_name" in r["error"] for r in run_results(connect(root), state["run_id"]))


def test_an_unknown_version_is_refused_before_any_call(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=1)
    with ScriptedLLM() as server, pytest.raises(RunError, match="no version 'v9'"):
        replay(root, server, prompt_version="v9")
