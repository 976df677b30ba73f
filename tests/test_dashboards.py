"""The Streamlit dashboards against a small real store: each page runs and shows the right numbers.

`build_store` writes real Parquet through `store.writer.write_partitioned`: four tasks over two days
(three successes, one failure), priced and unpriced LLM calls with OTel GenAI messages, one failed
call, and tool spans. Each page runs in `streamlit.testing.v1.AppTest`; its numbers are checked
against the same named queries run directly on the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.kpis import format_usd, format_value
from store.catalog import connect
from store.queries import run
from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA
from store.writer import write_partitioned

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboards" / "app.py")
NOW = datetime.now(UTC).replace(microsecond=0)
REFUND_QUESTION = "What is the refund policy for order 42?"
REFUND_ANSWER = "Refunds are accepted within 30 days of delivery."
TRACES = {"refund": "a" * 32, "failed": "b" * 32, "yesterday": "c" * 32, "tools": "d" * 32}


def _messages(*turns: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in turns])


def _task(
    trace: str, name: str, service: str, start: datetime, ms: float, outcome: str, prompt: str = "v1"
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
        }
        | fields
    )


def build_store(root: Path) -> Path:
    """Four tasks: three succeed (one yesterday), one fails; 0.020 USD spent in all."""
    refund = _task(TRACES["refund"], "answer_question", "support-bot", NOW - timedelta(hours=2), 1500, "success", "v2")
    failed = _task(TRACES["failed"], "answer_question", "support-bot", NOW - timedelta(hours=3), 4000, "failure")
    yesterday = _task(TRACES["yesterday"], "summarize", "research-agent", NOW - timedelta(hours=30), 2500, "success")
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
        ),
        _call(failed_llm, "gpt-4o", 0.010),
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
        ),
        _call(yesterday_llm, "my-llama", None, provider="vllm"),
        _call(yesterday_mini, "gpt-4o-mini", 0.004),
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
        ),
    ]
    write_partitioned(root, "spans", pa.Table.from_pylist(spans, schema=SPANS_SCHEMA))
    write_partitioned(root, "llm_calls", pa.Table.from_pylist(calls, schema=LLM_CALLS_SCHEMA))
    return root


@pytest.fixture
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = build_store(tmp_path / "data")
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(root))
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    return root


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
    errors = at.dataframe[2].value
    assert list(errors["error_type"]) == ["RateLimitError"]


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
    at.text_input(key="traces_q").input("100%").run()  # LIKE wildcards are matched literally
    assert any("No LLM calls match" in info.value for info in at.info)
    at.text_input(key="traces_q").input("").run()
    at.number_input(key="traces_n").set_value(3).run()
    at.text_input(key="traces_seed").input("review-1").run()
    first = list(at.dataframe[0].value["span_id"])
    at.run()
    assert list(at.dataframe[0].value["span_id"]) == first and len(first) == 3


def test_empty_store_shows_how_to_send_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(tmp_path / "nothing-yet"))
    at = _app()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317" in at.info[0].value
    for page in ("app_pages/cost.py", "app_pages/traces.py", "app_pages/latency.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in at.info[0].value
