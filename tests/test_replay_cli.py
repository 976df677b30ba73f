"""`vigil prompt` / `vigil replay` end to end: push, sample, run, gate, report, export → import, tracing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.server import Collector
from store.catalog import connect
from store.queries import run as run_query
from tests.conftest import query, wait_for
from tests.llm_server import ScriptedLLM, default_answer
from tests.replay_store import write_calls
from vigil.cli import main


def vigil(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0), capsys.readouterr().out


def refuses_when_kind(body: dict) -> str:
    """A model that refuses cases 0 and 1 under the v2 wording and answers everything else."""
    last = body["messages"][-1]["content"]
    if last.startswith("Reply kindly") and ("(case-0)" in last or "(case-1)" in last):
        return "I'm sorry, but I can't help with that."
    return default_answer(body)


def test_push_sample_run_gate_report_export_import(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = str(tmp_path / "data")
    write_calls(Path(data), 6)
    prompt = tmp_path / "v2.toml"
    prompt.write_text('template = "Reply kindly to: {question}"\n[params]\ntemperature = 0.0\n')
    assert vigil(capsys, "prompt", "push", "support-answer", "--version", "v2", str(prompt), "--data-dir", data)[0] == 0
    code, out = vigil(capsys, "prompt", "list", "--data-dir", data, "--format", "json")
    assert [(r["version"], r["source"]) for r in json.loads(out)] == [("v1", "traces"), ("v2", "registry")]
    code, out = vigil(capsys, "replay", "sample", "--data-dir", data, "-n", "6", "--seed", "1", "--set-id", "s1")
    assert code == 0 and "replay set s1: 6 calls" in out

    with ScriptedLLM(answer=refuses_when_kind) as server:
        code, out = vigil(
            capsys, "replay", "run", "--data-dir", data, "--set", "s1", "--prompt-version", "v2",
            "--base-url", server.base_url, "--run-id", "r1", "--format", "json",
        )  # fmt: skip
    state = json.loads(out)
    assert code == 0 and state["status"] == "completed" and state["verdict"] == "regress"
    assert all(b["temperature"] == 0.0 for b in server.bodies)

    code, out = vigil(capsys, "replay", "gate", "--data-dir", data, "--run", "r1", "--format", "markdown")
    assert code == 1 and "❌ regress" in out and "| max_refusal_increase | 0.3333 |" in out
    code, out = vigil(capsys, "replay", "gate", "--data-dir", data, "--run", "r1", "--max-refusal-increase", "0.5",
                      "--max-cost-increase", "1", "--format", "json")  # fmt: skip
    assert code == 0 and json.loads(out)["verdict"] == "pass"
    code, out = vigil(capsys, "replay", "gate", "--data-dir", data, "--run", "nope")
    assert code == 2 and "incomplete" in out
    code, out = vigil(capsys, "replay", "report", "--data-dir", data, "--run", "r1")
    assert code == 0 and "refusal gained" in out

    bundle = tmp_path / "r1.json.gz"
    code, out = vigil(capsys, "replay", "export", "--data-dir", data, "--run", "r1", "-o", str(bundle))
    assert code == 0 and "6 replay_results" in out
    other = str(tmp_path / "elsewhere")
    assert vigil(capsys, "replay", "import", str(bundle), "--data-dir", other)[0] == 0
    assert vigil(capsys, "replay", "import", str(bundle), "--data-dir", other)[0] == 0  # twice: no duplicates
    here, there = connect(Path(data)), connect(Path(other))
    for name in ("replay_runs", "replay_run_results"):
        params = {"run_id": "r1"}
        assert run_query(there, name, **params).to_pylist() == run_query(here, name, **params).to_pylist(), name
    code, out = vigil(capsys, "prompt", "list", "--data-dir", other, "--format", "json")
    assert {(r["version"], r["source"]) for r in json.loads(out)} == {("v1", "registry"), ("v2", "registry")}
    payload = json.loads(__import__("gzip").open(bundle, "rt").read())
    assert payload["prices"]["gpt-4o-mini"]["input_usd_per_mtok"] == pytest.approx(0.15)
    assert vigil(capsys, "replay", "gate", "--data-dir", other, "--run", "r1")[0] == 1  # same verdict elsewhere


def test_errors_are_messages_not_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = str(tmp_path / "data")
    write_calls(Path(data), 1)
    with pytest.raises(SystemExit) as exited:
        main(["replay", "run", "--data-dir", data, "--set", "missing", "--prompt-version", "v2"])
    assert exited.value.code == 2 and "no replay set 'missing'" in capsys.readouterr().err
    bad = tmp_path / "bad.gz"
    bad.write_text("not a bundle")
    with pytest.raises(SystemExit) as exited:
        main(["replay", "import", str(bad), "--data-dir", data])
    assert exited.value.code == 2 and "is not a replay bundle" in capsys.readouterr().err


def test_the_replays_own_calls_are_traced_into_vigil(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.conftest import make_config

    store = tmp_path / "data"
    write_calls(store, 3)
    traced_into = tmp_path / "traces"
    with Collector(make_config(traced_into)) as collector, ScriptedLLM() as server:
        assert vigil(capsys, "replay", "sample", "--data-dir", str(store), "--set-id", "s1")[0] == 0
        code, _ = vigil(
            capsys, "replay", "run", "--data-dir", str(store), "--set", "s1", "--base-url", server.base_url,
            "--run-id", "traced", "--otlp-endpoint", f"http://127.0.0.1:{collector.grpc_port}",
        )  # fmt: skip
        assert code == 0
        sql = (
            "SELECT c.request_model, c.input_tokens, c.prompt_version, "
            "s.attributes ->> '$.\"vigil.replay.run_id\"' AS run "
            "FROM llm_calls c JOIN spans s USING (trace_id, span_id) WHERE c.service_name = 'vigil-replay'"
        )
        rows = wait_for(lambda: query(traced_into, sql), lambda r: len(r) == 3)
    assert len(rows) == 3 and {r["run"] for r in rows} == {"traced"}
    assert all(
        r["request_model"] == "gpt-4o-mini" and r["input_tokens"] > 0 and r["prompt_version"] == "v1" for r in rows
    )
