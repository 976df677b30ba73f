"""Prompt registry, request rebuilding and seeded sampling over a real Parquet store and DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.prompts import PromptError, PromptVersion, find_prompt, load_prompt_file, push_prompt, render
from replay.rebuild import build_request
from replay.sampler import SampleError, SampleSpec, load_set, sample_calls, save_set
from store.catalog import connect
from store.queries import run
from tests.replay_store import SYSTEM, write_calls


def test_render_fills_variables_and_keeps_other_braces() -> None:
    assert render('Hi {name}, JSON: {{"a": 1}} {not a var}', {"name": "Ada"}) == 'Hi Ada, JSON: {"a": 1} {not a var}'
    with pytest.raises(PromptError, match="question"):
        render("Answer {question}", {})


def test_push_is_immutable_and_list_shows_trace_versions(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 3)
    prompt_file = tmp_path / "v2.toml"
    prompt_file.write_text(
        'template = "Reply kindly to: {question}"\nsystem = "Be brief."\n[params]\ntemperature = 0\n'
    )
    v2 = load_prompt_file(prompt_file, "support-answer", "v2")
    assert push_prompt(root, connect(root), v2) is True
    assert push_prompt(root, connect(root), v2) is False  # same content: nothing new stored
    other = PromptVersion("support-answer", "v2", "something else")
    with pytest.raises(PromptError, match="immutable"):
        push_prompt(root, connect(root), other)

    rows = run(connect(root), "prompt_versions", prompt_name="support-answer").to_pylist()
    assert [(r["version"], r["source"], r["calls"]) for r in rows] == [("v1", "traces", 3), ("v2", "registry", 0)]
    v1 = find_prompt(connect(root), "support-answer", "v1")
    assert v1 is not None and v1.source == "traces" and v1.template == "Answer the customer: {question}"
    assert find_prompt(connect(root), "support-answer", "v9") is None


def test_bad_prompt_files_say_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('templat = "x"\n')
    with pytest.raises(PromptError, match="unknown key"):
        load_prompt_file(bad, "p", "v1")
    with pytest.raises(PromptError, match="cannot read"):
        load_prompt_file(tmp_path / "missing.txt", "p", "v1")
    plain = tmp_path / "plain.txt"
    plain.write_text("Summarize: {text}")
    assert load_prompt_file(plain, "p", "v1", role="system").role == "system"


def test_rebuild_replaces_the_message_the_old_template_made(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 1)
    set_id = save_set(root, sample_calls(connect(root), SampleSpec(size=1)), SampleSpec())
    case = load_set(connect(root), set_id)[0]
    v2 = PromptVersion("support-answer", "v2", "Reply kindly to: {question}", system_prompt="Be brief.",
                       params={"temperature": 0, "max_tokens": 50})  # fmt: skip
    request = build_request(case, v2)
    assert request.placement == "matched"
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Reply kindly to: where is my order? (case-0)"},
    ]
    assert request.params == {"max_tokens": 50, "temperature": 0}
    assert request.model == "gpt-4o-mini"
    unchanged = build_request(case, None, model="other-model")
    assert unchanged.messages[0] == {"role": "system", "content": SYSTEM} and unchanged.model == "other-model"
    assert unchanged.params == {"max_tokens": 100, "temperature": 0.2}


def test_rebuild_keeps_tools_and_tool_turns() -> None:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"q": 1}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
    ]
    case = {
        "input_messages": json.dumps(messages),
        "tool_definitions": json.dumps([{"type": "function", "name": "weather", "parameters": {"type": "object"}}]),
        "request_model": "m",
    }
    request = build_request(case, None, default_max_tokens=77)
    assert request.messages[1]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"q": 1}'}
    assert request.messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert request.tools == [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    assert request.params == {"max_tokens": 77}


def test_sampling_is_reproducible_filtered_and_stratified(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 30)
    write_calls(root, 6, start=100, request_model="gpt-4o", prompt_version="v0")
    con = connect(root)
    ids = lambda spec: [(r["trace_id"]) for r in sample_calls(con, spec).to_pylist()]  # noqa: E731
    assert ids(SampleSpec(size=10, seed=3)) == ids(SampleSpec(size=10, seed=3))
    assert ids(SampleSpec(size=10, seed=3)) != ids(SampleSpec(size=10, seed=4))
    assert len(ids(SampleSpec(size=100))) == 36

    only_v0 = sample_calls(con, SampleSpec(size=100, prompt_version="v0")).to_pylist()
    assert {r["prompt_version"] for r in only_v0} == {"v0"} and len(only_v0) == 6
    assert len(ids(SampleSpec(size=100, model="gpt-4o", where="trace_id > '0'"))) == 6

    stratified = sample_calls(con, SampleSpec(size=12, seed=1, stratify="model")).to_pylist()
    by_model = {m: sum(r["request_model"] == m for r in stratified) for m in ("gpt-4o", "gpt-4o-mini")}
    assert by_model == {"gpt-4o": 6, "gpt-4o-mini": 6}  # the small stratum is fully represented
    random_12 = sample_calls(con, SampleSpec(size=12, seed=1)).to_pylist()
    assert sum(r["request_model"] == "gpt-4o" for r in random_12) < 6


def test_sampling_errors_are_clear(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 2)
    con = connect(root)
    with pytest.raises(SampleError, match="sample query failed"):
        sample_calls(con, SampleSpec(where="no_such_column = 1"))
    with pytest.raises(SampleError, match="no stored call"):
        save_set(root, sample_calls(con, SampleSpec(service="nope")), SampleSpec())
    with pytest.raises(SampleError, match="no replay set"):
        load_set(con, "set-missing")


def test_sampling_by_refusal(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 4)
    write_calls(root, 2, start=10, refused=True, refusal_rule="en.cannot_assist@1")
    con = connect(root)
    refused = sample_calls(con, SampleSpec(refused=True)).to_pylist()
    assert sorted(r["trace_id"] for r in refused) == [f"{10:032x}", f"{11:032x}"]
    assert len(sample_calls(con, SampleSpec(refused=False)).to_pylist()) == 4


def test_a_saved_set_is_a_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 5)
    spec = SampleSpec(size=3, seed=9)
    set_id = save_set(root, sample_calls(connect(root), spec), spec, "s1")
    rows = load_set(connect(root), set_id)
    assert [r["position"] for r in rows] == [0, 1, 2]
    assert all(r["input_messages"] and r["output_text"] and r["prompt_variables"] for r in rows)
    assert json.loads(rows[0]["spec"])["seed"] == 9


def test_replay_queries_answer_on_a_store_without_replays(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_calls(root, 1)
    con = connect(root)
    assert run(con, "replay_runs", run_id=None).num_rows == 0
    assert run(con, "replay_run_results", run_id="r").num_rows == 0
    assert run(con, "prompt_versions", prompt_name="nope").num_rows == 0
