"""The Streamlit dashboards against a small real store: each page runs and shows the right numbers.

`build_store` writes real Parquet through `store.writer`: four tasks over two days (three successes,
one failure) in two deployment environments, priced and unpriced LLM calls with OTel GenAI messages,
one failed call, two streamed calls, tool spans, and the quality columns refusal detection records
(one refusal, one validation failure) unless `quality=False` builds a store from before them. Each
page runs in `streamlit.testing.v1.AppTest`; its numbers are checked against the same named queries
run directly on the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.kpis import build_kpis, format_usd, format_value, usd_decimals
from store.alerts import evaluate_alerts
from store.catalog import connect
from store.config import load_config
from store.queries import run
from store.replay_picks import add_pick, read_picks
from store.schema import LLM_CALLS_SCHEMA, QUALITY_FIELDS, SPANS_SCHEMA
from store.writer import table_dir, write_file, write_partitioned
from tests.conftest import query, wait_for
from tests.llm_server import ScriptedLLM

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboards" / "app.py")
NOW = datetime.now(UTC).replace(microsecond=0)
REFUND_QUESTION = "What is the refund policy for order 42?"
REFUND_ANSWER = "Refunds are accepted within 30 days of delivery."
TRACES = {"refund": "a" * 32, "failed": "b" * 32, "yesterday": "c" * 32, "tools": "d" * 32}
REFUSAL_RULE = "en.cannot_assist@1"
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
VALIDATION_ERROR = "output is not valid JSON: Expecting value at line 1 column 1"


def _messages(*turns: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in turns])


def _task(
    trace: str,
    name: str,
    service: str,
    start: datetime,
    ms: float,
    outcome: str,
    prompt: str = "v1",
    resource: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "trace_id": trace,
        "span_id": trace[:15] + "0",
        "parent_span_id": None,
        "name": name,
        "kind": "server",
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "duration_ms": ms,
        "status_code": "error" if outcome == "failure" else "ok",
        "service_name": service,
        "prompt_name": "support",
        "prompt_version": prompt,
        "attributes": json.dumps({"task.outcome": outcome}),
        "resource_attributes": json.dumps({"service.name": service} | (resource or {})),
        "received_at": NOW,
    }


def _child(task: dict[str, Any], n: int, name: str, kind: str, offset_ms: float, ms: float) -> dict[str, Any]:
    start = task["start_time"] + timedelta(milliseconds=offset_ms)
    return task | {
        "span_id": task["trace_id"][:15] + str(n),
        "parent_span_id": task["span_id"],
        "name": name,
        "kind": "client" if kind == "llm" else "internal",
        "genai_kind": kind,
        "start_time": start,
        "end_time": start + timedelta(milliseconds=ms),
        "duration_ms": ms,
        "status_code": "unset",
        "attributes": "{}",
    }


def _call(span: dict[str, Any], model: str, cost: float | None, **fields: Any) -> dict[str, Any]:
    row = {key: span[key] for key in ("trace_id", "span_id", "parent_span_id", "start_time", "end_time")}
    return (
        row
        | {
            "duration_ms": span["duration_ms"],
            "service_name": span["service_name"],
            "span_name": span["name"],
            "convention": "otel_genai",
            "provider": "openai",
            "operation": "chat",
            "request_model": model,
            "response_model": model,
            "input_tokens": 100,
            "output_tokens": 20,
            "total_tokens": 120,
            "cost_usd": cost,
            "cost_source": "table" if cost is not None else "unpriced",
            "input_messages": _messages(("user", "Hello")),
            "output_messages": _messages(("assistant", "Hi")),
            "output_text": "Hi",
            "status": "ok",
            "mapping": "mapped",
            "received_at": NOW,
            "refused": False,
            "output_format": "text",
            "output_signature": "text:short",
            "output_length": 2,
        }
        | fields
    )


def build_store(root: Path, quality: bool = True) -> Path:
    """Four tasks: three succeed (one yesterday), one fails; 0.020 USD spent in all. Two tasks run in
    production (deployment.environment.name), yesterday's in staging (the older deployment.environment
    key), the tools task names none."""
    production = {"deployment.environment.name": "production"}
    refund = _task(
        TRACES["refund"], "answer_question", "support-bot", NOW - timedelta(hours=2), 1500, "success", "v2", production
    )
    failed = _task(
        TRACES["failed"], "answer_question", "support-bot", NOW - timedelta(hours=3), 4000, "failure", "v1", production
    )
    yesterday = _task(
        TRACES["yesterday"],
        "summarize",
        "research-agent",
        NOW - timedelta(hours=30),
        2500,
        "success",
        resource={"deployment.environment": "staging"},
    )
    tools = _task(TRACES["tools"], "summarize", "research-agent", NOW - timedelta(hours=1), 3000, "success")
    spans = [refund, failed, yesterday, tools]
    refund_llm = _child(refund, 1, "chat gpt-4o-mini", "llm", 100, 1200)
    failed_llm = _child(failed, 1, "chat gpt-4o", "llm", 100, 2000)
    failed_retry = _child(failed, 2, "chat gpt-4o", "llm", 2200, 300)
    yesterday_llm = _child(yesterday, 1, "chat my-llama", "llm", 50, 2000)
    yesterday_mini = _child(yesterday, 2, "chat gpt-4o-mini", "llm", 2100, 300)
    tools_llm = _child(tools, 1, "chat gpt-4o-mini", "llm", 10, 900)
    tools_tool = _child(tools, 2, "execute_tool search", "tool", 1000, 1500)
    spans += [refund_llm, failed_llm, failed_retry, yesterday_llm, yesterday_mini, tools_llm, tools_tool]
    calls = [
        _call(
            refund_llm,
            "gpt-4o-mini",
            0.002,
            prompt_name="support",
            prompt_version="v2",
            input_messages=_messages(("system", "You are a support agent."), ("user", REFUND_QUESTION)),
            output_messages=_messages(("assistant", REFUND_ANSWER)),
            output_text=REFUND_ANSWER,
            is_streaming=True,
            time_to_first_token_ms=300.0,
            output_format="json",
            output_signature="json:{answer:str,policy:str}",
            output_keys=["answer", "policy"],
        ),
        _call(
            failed_llm,
            "gpt-4o",
            0.010,
            output_messages=_messages(("assistant", REFUSAL_TEXT)),
            output_text=REFUSAL_TEXT,
            refused=True,
            refusal_rule=REFUSAL_RULE,
        ),
        _call(
            failed_retry,
            "gpt-4o",
            None,
            input_tokens=None,
            output_tokens=None,
            total_tokens=None,
            cost_source=None,
            status="error",
            error_type="RateLimitError",
            refused=None,
            output_format=None,
            output_signature=None,
            output_length=None,
        ),
        _call(
            yesterday_llm,
            "my-llama",
            None,
            provider="vllm",
            validation_status="pass",
            output_format="json",
            output_signature="json:{answer:str}",
            output_keys=["answer"],
        ),
        _call(
            yesterday_mini,
            "gpt-4o-mini",
            0.004,
            output_text="Sure! Here is the JSON",
            validation_status="fail",
            validation_error=VALIDATION_ERROR,
        ),
        _call(
            tools_llm,
            "gpt-4o-mini",
            0.004,
            output_messages=json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "tool_call", "id": "t1", "name": "search", "arguments": {"q": "llamas"}}],
                    }
                ]
            ),
            output_text=None,
            is_streaming=True,
            time_to_first_token_ms=150.0,
            output_format="tool_calls",
            output_signature="tool_calls:search",
        ),
    ]
    write_partitioned(root, "spans", pa.Table.from_pylist(spans, schema=SPANS_SCHEMA))
    _write_calls(root, calls, quality)
    return root


def _write_calls(root: Path, calls: list[dict[str, Any]], quality: bool) -> None:
    """Real Parquet files as the collector lays them out; with the quality columns, or without them as a store
    written before they existed."""
    schema = LLM_CALLS_SCHEMA
    if not quality:
        schema = pa.schema([f for f in schema if f.name not in dict(QUALITY_FIELDS)])
    for day in sorted({call["start_time"].date() for call in calls}):
        rows = [call for call in calls if call["start_time"].date() == day]
        write_file(table_dir(root, "llm_calls") / f"date={day}", pa.Table.from_pylist(rows, schema=schema))


@pytest.fixture
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = build_store(tmp_path / "data")
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(root))
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    return root


PAGES = [f"app_pages/{page.name}" for page in sorted((REPO / "dashboards" / "app_pages").glob("[!_]*.py"))]


def _app(page: str | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def _texts(at: AppTest) -> str:
    return "\n".join(str(element.value) for element in at.markdown)


def test_overview_tiles_match_the_named_queries(store_root: Path) -> None:
    at = _app(range="all")
    con = connect(store_root)
    expected = run(con, "cost_per_successful_task").to_pylist()[0]
    tiles = _metrics(at)
    assert expected["success_rate"] == pytest.approx(0.75)
    assert tiles["Success rate"] == format_value(expected["success_rate"], "percent") == "75.0%"
    assert expected["cost_per_successful_task"] == pytest.approx(0.020 / 3)
    assert tiles["Cost per successful task"] == format_usd(expected["cost_per_successful_task"]) == "$0.0067"
    assert tiles["Tasks"] == "4"
    assert tiles["Total spend"] == "$0.0200"
    assert tiles["LLM error rate"] == "16.7%"  # 1 of 6 calls
    latency = run(con, "task_latency").to_pylist()[0]
    assert tiles["p50 task latency"] == format_value(latency["p50_ms"], "ms") == "2.75 s"
    assert len(at.get("plotly_chart")) == 1


def test_overview_compares_with_the_window_before(store_root: Path) -> None:
    at = _app(range="24h")
    tiles = {metric.label: metric for metric in at.metric}
    assert tiles["Tasks"].value == "3"  # yesterday's task is 30 h old
    assert tiles["Tasks"].delta == "+200%"  # 3 now against 1 in the 24 h before
    assert tiles["Success rate"].delta == "-33.3 pp"  # 2 of 3 against 1 of 1
    assert list(tiles["Tasks"].proto.chart_data) == [1, 1, 1], "the trend: one task in each of three hours"
    assert list(tiles["p50 task latency"].proto.chart_data) == [4000, 1500, 3000]
    assert "trends are per hour" in " ".join(caption.value for caption in at.caption)


def test_a_change_that_rounds_to_nothing_has_no_arrow() -> None:
    same = {"tasks": 3.0, "llm_error_rate": 0.1, "success_rate": 0.5}
    tiles = {kpi.label: kpi for kpi in build_kpis(same, {**same, "llm_error_rate": 0.1000001, "success_rate": 0.4})}
    assert (tiles["Tasks"].delta, tiles["Tasks"].delta_arrow) == ("0%", "off")
    assert (tiles["LLM error rate"].delta, tiles["LLM error rate"].delta_arrow) == ("0.0 pp", "off")
    assert (tiles["Success rate"].delta, tiles["Success rate"].delta_arrow) == ("+10.0 pp", "auto")


def test_sidebar_filters_reach_the_queries_and_the_url(store_root: Path) -> None:
    at = _app(range="all", service="research-agent")
    assert at.selectbox(key="service").value == "research-agent"
    tiles = _metrics(at)
    assert tiles["Tasks"] == "2"
    assert tiles["Success rate"] == "100.0%"
    at.selectbox(key="model").select("gpt-4o").run()
    assert at.query_params["model"] == ["gpt-4o"] or at.query_params["model"] == "gpt-4o"
    assert any("No tasks" in info.value for info in at.info)  # research-agent never used gpt-4o


def test_cost_page(store_root: Path) -> None:
    at = _app("app_pages/cost.py", range="all")
    assert not at.info
    assert at.selectbox(key="cost_group").value == "model"
    tables = at.dataframe
    by_model = tables[0].value
    assert set(by_model["group"]) == {"gpt-4o", "gpt-4o-mini", "my-llama"}
    assert by_model.set_index("group").loc["gpt-4o", "failed_tasks"] == 1
    breakdown = tables[1].value
    assert breakdown["cost_usd"].max() == pytest.approx(0.010)
    expensive = tables[2].value
    assert expensive["trace_id"].iloc[0] == TRACES["failed"]
    unpriced = tables[3].value
    assert "my-llama" in set(unpriced["model"])
    at.selectbox(key="cost_group").select("service").run()
    assert not at.exception
    assert set(at.dataframe[0].value["group"]) == {"support-bot", "research-agent"}


def test_latency_page(store_root: Path) -> None:
    at = _app("app_pages/latency.py", range="all")
    by_model = at.dataframe[0].value.set_index("model")
    assert by_model.loc["gpt-4o", "errors"] == 1
    assert by_model.loc["gpt-4o-mini", "p50_ms"] == pytest.approx(900.0)
    streams = at.dataframe[1].value.set_index("model")
    expected = run(connect(store_root), "llm_time_to_first_token").to_pandas().set_index("model")
    assert streams.loc["gpt-4o-mini", "streams"] == 2
    assert streams.loc["gpt-4o-mini", "ttft_p50_ms"] == expected.loc["gpt-4o-mini", "ttft_p50_ms"] == 225.0
    assert set(streams.index) == {"gpt-4o-mini"}  # only streamed calls have a time to first token
    errors = at.dataframe[3].value
    assert list(errors["error_type"]) == ["RateLimitError"]
    assert len(at.get("plotly_chart")) == 3  # percentiles, time to first token, errors


def test_trace_view_shows_the_conversation(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all", trace=TRACES["refund"])
    text = _texts(at)
    assert REFUND_QUESTION in text
    assert REFUND_ANSWER in text
    assert "gpt-4o-mini" in text and "support@v2" in text and "$0.0020" in text
    assert len(at.get("plotly_chart")) == 1  # the waterfall
    assert _metrics(at)["Outcome"] == "success"


def test_trace_view_shows_tool_calls_and_errors(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all", trace=TRACES["tools"])
    assert "tool call** `search`" in _texts(at)
    at = _app("app_pages/traces.py", range="all", trace=TRACES["failed"])
    assert any("RateLimitError" in error.value for error in at.error)


def test_search_and_seeded_sample(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all")
    assert len(at.dataframe[0].value) == 6
    at.text_input(key="traces_q").input("REFUND policy").run()
    hits = at.dataframe[0].value
    assert list(hits["trace_id"]) == [TRACES["refund"]]
    assert hits["input_preview"].iloc[0] == REFUND_QUESTION, "what was asked, not the system prompt"
    assert at.dataframe[0].proto.column_order[:5] == ["start_time", "service_name", "model", "prompt_version",
                                                      "input_preview"], "the ids stay out of sight"  # fmt: skip
    at.text_input(key="traces_q").input("100%").run()  # LIKE wildcards are matched literally
    assert any("No LLM calls match" in info.value for info in at.info)
    at.text_input(key="traces_q").input("").run()
    at.number_input(key="traces_n").set_value(3).run()
    at.text_input(key="traces_seed").input("review-1").run()
    first = list(at.dataframe[0].value["span_id"])
    at.run()
    assert list(at.dataframe[0].value["span_id"]) == first and len(first) == 3


def test_overview_quality_tiles_and_alerts(store_root: Path) -> None:
    at = _app(range="all")
    con = connect(store_root)
    refusals = run(con, "refusal_rate").to_pylist()[0]
    validation = run(con, "validation_failure_rate").to_pylist()[0]
    assert (refusals["calls"], refusals["refusals"]) == (5, 1)  # the errored call is not counted
    assert (validation["calls"], validation["failures"]) == (2, 1)
    tiles = _metrics(at)
    assert tiles["Refusal rate"] == format_value(refusals["refusal_rate"], "percent") == "20.0%"
    assert tiles["Validation failures"] == format_value(validation["failure_rate"], "percent") == "50.0%"
    headers = [element.value for element in at.subheader]
    assert "Alerts firing now" in headers
    assert any("No alert rules are configured" in caption.value for caption in at.caption)


def test_overview_shows_the_alerts_that_fire(store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "vigil.toml"
    config.write_text(
        '[[alerts]]\nname = "refusals up"\nmetric = "refusal_rate"\nthreshold = 0.1\nwindow = "7d"\n'
        "min_samples = 1\n\n"
        '[[alerts]]\nname = "errors"\nmetric = "error_rate"\nthreshold = 0.5\nwindow = "7d"\nmin_samples = 1\n'
    )
    monkeypatch.setenv("VIGIL_CONFIG", str(config))
    at = _app(range="all")
    expected = {r.rule: r for r in evaluate_alerts(connect(store_root, load_config(config)), load_config(config))}
    assert expected["refusals up"].firing and not expected["errors"].firing  # 1 refusal in 5 answers; 1 error in 6
    assert any("1 of 2 alert rules fire" in error.value for error in at.error)
    firing = at.dataframe[0].value
    assert list(firing["rule"]) == ["refusals up"]
    assert firing["value"].iloc[0] == pytest.approx(expected["refusals up"].value) == pytest.approx(0.2)


def test_environment_filter(store_root: Path) -> None:
    at = _app(range="all")
    assert at.selectbox(key="environment").options == ["(all)", "production", "staging"]
    at.selectbox(key="environment").select("production").run()
    assert at.query_params["environment"] in ("production", ["production"])
    assert _metrics(at)["Tasks"] == "2"
    assert _metrics(at)["Success rate"] == "50.0%"
    at = _app(range="all", environment="staging")  # the older deployment.environment key counts too
    assert _metrics(at)["Tasks"] == "1"
    at.switch_page("app_pages/latency.py").run()
    assert set(at.dataframe[0].value["model"]) == {"my-llama", "gpt-4o-mini"}  # yesterday's two calls


def test_quality_page(store_root: Path) -> None:
    at = _app("app_pages/quality.py", range="all")
    con = connect(store_root)
    daily = run(con, "quality_by_day").to_pandas()
    assert daily["refusals"].sum() == 1 and daily["validation_failures"].sum() == 1
    refusals = at.dataframe[0].value
    expected = run(con, "refusal_examples").to_pandas()
    assert list(refusals["trace_id"]) == list(expected["trace_id"]) == [TRACES["failed"]]
    assert refusals["refusal_rule"].iloc[0] == REFUSAL_RULE
    assert REFUSAL_TEXT in refusals["output_preview"].iloc[0]
    failures = at.dataframe[1].value
    assert list(failures["trace_id"]) == [TRACES["yesterday"]]
    assert failures["validation_error"].iloc[0] == VALIDATION_ERROR
    assert len(at.get("plotly_chart")) >= 2  # refusal rate and validation-failure rate by day
    assert any("no window before it" in info.value for info in at.info)  # all time: drift needs a baseline
    at.selectbox(key="model").select("gpt-4o-mini").run()  # the sidebar slices the page too
    assert not at.exception
    assert any("No refusals" in success.value for success in at.success)


def test_quality_drift_against_the_window_before(store_root: Path) -> None:
    at = _app("app_pages/quality.py", range="24h")
    drift = at.dataframe[-2].value.set_index("group")
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=24)
    windows = {"current_since": since, "baseline_since": since - timedelta(hours=24), "baseline_until": since}
    expected = run(connect(store_root), "signature_drift", min_samples=50, **windows).to_pandas().set_index("group")
    assert drift.loc["all", "baseline_calls"] == expected.loc["all", "baseline_calls"] == 2  # yesterday's calls
    assert drift.loc["all", "current_calls"] == expected.loc["all", "current_calls"] == 3  # not the failed retry
    assert drift.loc["all", "js_distance"] == pytest.approx(expected.loc["all", "js_distance"])
    assert drift.loc["all", "status"] == "insufficient_data"  # 50 calls a side before anything is called drift
    assert any("Too few calls to judge drift" in info.value for info in at.info)
    keys = at.dataframe[-1].value
    assert list(zip(keys["key"], keys["change"], strict=True)) == [("policy", "appeared")]
    at.radio(key="drift_baseline").set_value("prompt").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="drift_old_prompt").value == "support@v1"  # the newest version against the one before
    assert at.selectbox(key="drift_new_prompt").value == "support@v2"


def test_trace_view_shows_refusal_and_signature(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all", trace=TRACES["failed"])
    text = _texts(at)
    assert f"refused ({REFUSAL_RULE})" in text
    assert "text signature `text:short`" in text
    at = _app("app_pages/traces.py", range="all", trace=TRACES["yesterday"])
    assert any(VALIDATION_ERROR in warning.value for warning in at.warning)


def test_verdict_button_records_the_outcome(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all", trace=TRACES["refund"])
    assert _metrics(at)["Outcome"] == "success"
    at.radio(key="verdict_outcome").set_value("failure")
    at.text_input(key="verdict_comment").input("wrong refund window")
    at.button(key="verdict_submit").click().run()
    assert not at.exception, at.exception
    assert _metrics(at)["Outcome"] == "failure"
    assert any("Recorded failure" in success.value for success in at.success)
    task = run(connect(store_root), "trace_task", trace_id=TRACES["refund"]).to_pylist()[0]
    assert (task["outcome"], task["outcome_source"]) == ("failure", "verdict:dashboards")
    assert task["outcome_comment"] == "wrong refund window"


def test_send_to_replay_adds_the_call_to_a_pick_list(store_root: Path) -> None:
    at = _app("app_pages/traces.py", range="all", trace=TRACES["failed"])
    span = TRACES["failed"][:15] + "1"
    at.text_input(key="traces_pick_list").input("refusals").run()
    at.button(key=f"pick_{span}").click().run()
    at.button(key=f"pick_{span}").click().run()  # twice: still one pick
    assert not at.exception, at.exception
    assert [(p["trace_id"], p["span_id"]) for p in read_picks(store_root, "refusals")] == [(TRACES["failed"], span)]
    at.switch_page("app_pages/replay.py").run()
    assert not at.exception, at.exception
    picks = at.dataframe[0].value
    assert list(picks["span_id"]) == [span]


def test_replay_page_starts_a_run_from_picks_and_compares_the_answers(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app("app_pages/replay.py", range="all")
    assert any("No replay runs yet" in info.value for info in at.info)
    assert at.selectbox(key="replay_source").options == ["a new sample of the calls in the sidebar's window and slice"]
    refund_span = TRACES["refund"][:15] + "1"
    add_pick(store_root, "review", TRACES["refund"], refund_span)
    st.cache_data.clear()  # what the 30 s cache expiry does for a running app
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    with ScriptedLLM(answer=lambda body: "Refunds are accepted within 14 days.") as llm:
        at = _app("app_pages/replay.py", range="all")
        at.selectbox(key="replay_source").select("picks:review")
        run_id = _start_replay(at, llm)
        runs = wait_for(lambda: _finished_run(store_root, run_id), lambda row: row is not None, timeout_s=120)
    log = (store_root / "replay_logs" / f"{run_id}.log").read_text()
    assert runs is not None, log
    assert llm.count()  # the replay really called the server
    at = _app("app_pages/replay.py", range="all", run=run_id)
    shown = at.dataframe[0].value.set_index("run_id")
    assert shown.loc[run_id, "cases_total"] == runs["cases_total"] == 1
    assert shown.loc[run_id, "verdict"].endswith(runs["verdict"])
    text = _texts(at)
    assert "**Original**" in text and "**Replayed**" in text
    assert REFUND_ANSWER in [t.value for t in at.text]  # the old answer beside the new one
    assert "Refunds are accepted within 14 days." in [t.value for t in at.text]
    assert len(at.get("plotly_chart")) == 1


def test_replay_page_replays_a_new_sample_of_the_sidebars_slice(
    store_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    with ScriptedLLM(answer=lambda body: "A new answer.") as llm:
        at = _app("app_pages/replay.py", range="all", service="research-agent")
        at.number_input(key="replay_size").set_value(500)
        run_id = _start_replay(at, llm)  # the first choice: a new sample
        runs = wait_for(lambda: _finished_run(store_root, run_id), lambda row: row is not None, timeout_s=120)
    log = (store_root / "replay_logs" / f"{run_id}.log").read_text()
    assert runs is not None, log
    assert "--service research-agent" in log and f"--set-id {run_id}-sample" in log
    calls = query(store_root, "SELECT count(*) AS n FROM llm_calls WHERE service_name = 'research-agent'")[0]["n"]
    assert runs["cases_total"] == calls and runs["set_id"] == f"{run_id}-sample", "every call of the slice, no other"


def _start_replay(at: AppTest, llm: ScriptedLLM) -> str:
    """Fill the form to replay against `llm`, start it, and return the run id the page reports."""
    at.text_input(key="replay_base_url").input(llm.base_url)
    at.text_input(key="replay_key_env").input("TEST_LLM_KEY")
    at.button(key="replay_submit").click().run()
    assert not at.exception, at.exception
    started = next(success.value for success in at.success if "started" in success.value)
    return started.split("`")[1]


def _finished_run(root: Path, run_id: str) -> dict[str, Any] | None:
    rows = run(connect(root), "replay_runs", run_id=run_id).to_pylist()
    return rows[0] if rows and rows[0]["status"] != "running" else None


def test_store_without_quality_columns_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(build_store(tmp_path / "data", quality=False)))
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    at = _app(range="all")
    assert "Refusal rate" not in _metrics(at) and _metrics(at)["Tasks"] == "4"
    assert any("not available yet" in caption.value for caption in at.caption)
    at.switch_page("app_pages/quality.py").run()
    assert not at.exception
    assert any("Quality signals: not available yet" in info.value for info in at.info)
    at = _app("app_pages/traces.py", range="all", trace=TRACES["failed"])
    assert "signature" not in _texts(at) and REFUSAL_TEXT in _texts(at)


def test_empty_store_shows_how_to_send_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(tmp_path / "nothing-yet"))
    at = _app()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317" in at.info[0].value
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in at.info[0].value


def test_usd_amounts_keep_small_costs_visible() -> None:
    assert [format_usd(v) for v in (1234.5, 1.5, 0.0067, 0.000024, 0.0000249, 0.0)] == [
        "$1,234", "$1.50", "$0.0067", "$0.000024", "$0.000025", "$0.0000"
    ]  # fmt: skip
    # one precision per table, from its smallest non-zero amount (NaN for unpriced calls is ignored)
    assert usd_decimals(pd.DataFrame({"a": [12.5, 0.0067], "b": [0.0, None]})) == 4
    assert usd_decimals(pd.DataFrame({"a": [12.5, 0.000024], "b": [0.0, None]})) == 6
    assert usd_decimals(pd.DataFrame({"a": [None, 0.0]})) == 4


def test_a_store_opened_ahead_serves_the_first_page(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dashboards.serve opens the store before any session: the first page then uses that connection."""
    from dashboards import data, serve

    st.cache_resource.clear()
    serve._warm()  # what `vigil dashboards` runs in a thread as Streamlit starts
    opened = []
    monkeypatch.setattr(data, "connect", lambda *args: opened.append(args) or connect(*args))
    at = _app(range="all")
    assert _metrics(at)["Tasks"] == "4"
    assert not opened  # no second connection: the warm one answered
