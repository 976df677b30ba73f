"""Task outcomes (attributes, status, late verdicts) and what one successful task costs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from store.catalog import connect
from store.config import load_config
from store.outcomes import record_verdicts, verdict_row
from store.queries import run
from store.rollups import enable_memo
from store.schema import LLM_CALLS_SCHEMA, SPANS_SCHEMA
from store.writer import write_partitioned
from tests.conftest import RECORDINGS, query, wait_for
from tests.otlp_json import load_recording

T0 = 1_790_000_000 * 10**9  # 2026-09-21
HOUR = 3600 * 10**9


def _task(n: int, name: str, service: str, status: str = "unset", attrs: dict | None = None, hours: int = 0) -> dict:
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "name": name,
        "service_name": service,
        "start_time": T0 + hours * HOUR + n,
        "end_time": T0 + hours * HOUR + n + 10**9,
        "duration_ms": 1000.0,
        "status_code": status,
        "attributes": json.dumps(attrs or {}),
        "received_at": T0,
    }


def _call(n: int, k: int, model: str, cost: float | None, tokens: tuple[int, int] = (100, 10)) -> dict:
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n * 100 + k:016x}",
        "parent_span_id": f"{n:016x}",
        "start_time": T0 + n + k,
        "request_model": model,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "cost_usd": cost,
        "cost_source": "unpriced" if cost is None else "table",
        "status": "ok",
        "received_at": T0,
    }


@pytest.fixture
def hand_checked(tmp_path: Path) -> Path:
    """Six tasks whose costs and outcomes are easy to add up by hand."""
    tasks = [
        _task(1, "summarize", "bot", attrs={"task.outcome": "success"}),  # 0.010 + 0.002
        _task(2, "summarize", "bot", attrs={"task.outcome": "failure"}),  # 0.030 (a retry loop) + 0.030
        _task(3, "summarize", "bot", status="ok"),  # 0.004, success by status
        _task(4, "research", "agent", status="error"),  # 0.100, failure by status
        _task(5, "research", "agent", attrs={"task.outcome": "Succeeded"}),  # 0.050 + unpriced call
        _task(6, "research", "agent"),  # 0.020, no signal at all: unknown
    ]
    calls = [
        _call(1, 1, "gpt-4o-mini", 0.010),
        _call(1, 2, "gpt-4o-mini", 0.002),
        _call(2, 1, "gpt-4o-mini", 0.030),
        _call(2, 2, "gpt-4o-mini", 0.030),
        _call(3, 1, "gpt-4o-mini", 0.004),
        _call(4, 1, "gpt-4o", 0.100),
        _call(5, 1, "gpt-4o", 0.050),
        _call(5, 2, "my-llama", None, tokens=(50, 5)),
        _call(6, 1, "gpt-4o", 0.020),
    ]
    write_partitioned(tmp_path, "spans", pa.Table.from_pylist(tasks, SPANS_SCHEMA))
    write_partitioned(tmp_path, "llm_calls", pa.Table.from_pylist(calls, LLM_CALLS_SCHEMA))
    return tmp_path


def test_outcomes_from_attributes_and_status(hand_checked: Path) -> None:
    rows = query(hand_checked, "SELECT trace_id, outcome, outcome_source, cost_usd FROM tasks ORDER BY trace_id")
    assert [(r["outcome"], r["outcome_source"]) for r in rows] == [
        ("success", "attribute"),
        ("failure", "attribute"),
        ("success", "status"),
        ("failure", "status"),
        ("success", "attribute"),
        ("unknown", "none"),
    ]
    assert [round(r["cost_usd"], 6) for r in rows] == [0.012, 0.06, 0.004, 0.1, 0.05, 0.02]


def test_cost_per_successful_task_by_hand(hand_checked: Path) -> None:
    con = connect(hand_checked)
    overall = run(con, "cost_per_successful_task", since=None, until=None).to_pylist()[0]
    # 0.012 + 0.060 + 0.004 + 0.100 + 0.050 + 0.020 = 0.246 over 3 successes (tasks 1, 3, 5).
    assert overall["tasks"] == 6
    assert (overall["successful_tasks"], overall["failed_tasks"], overall["unknown_tasks"]) == (3, 2, 1)
    assert overall["total_cost_usd"] == pytest.approx(0.246)
    assert overall["cost_per_successful_task"] == pytest.approx(0.082)
    assert overall["failed_cost_usd"] == pytest.approx(0.160)
    assert overall["success_rate"] == pytest.approx(0.6)
    assert overall["unpriced_calls"] == 1

    by_service = {r["group"]: r for r in run(con, "cost_per_successful_task", group="service").to_pylist()}
    assert by_service["bot"]["cost_per_successful_task"] == pytest.approx(0.076 / 2)
    assert by_service["agent"]["cost_per_successful_task"] == pytest.approx(0.170 / 1)

    breakdown = run(con, "failed_task_cost_breakdown", since=None, until=None).to_pylist()
    assert [(r["task_name"], r["model"], r["calls"], round(r["cost_usd"], 6)) for r in breakdown] == [
        ("research", "gpt-4o", 1, 0.1),
        ("summarize", "gpt-4o-mini", 2, 0.06),
    ]
    assert sum(r["share_of_failed_cost"] for r in breakdown) == pytest.approx(1.0)


def test_budgets_flag_tasks_over_their_ceiling(hand_checked: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "vigil.toml"
    config_file.write_text("[budgets]\nper_service_usd = { agent = 0.06 }\nper_task_name_usd = { summarize = 0.01 }\n")
    con = connect(hand_checked, load_config(config_file, env={}))
    rows = con.execute("SELECT trace_id, budget_usd, over_budget FROM tasks ORDER BY trace_id").fetchall()
    assert [(budget, over) for _, budget, over in rows] == [
        (0.01, True),
        (0.01, True),
        (0.01, False),
        (0.06, True),
        (0.06, False),
        (0.06, False),
    ]
    assert run(con, "cost_per_successful_task").to_pylist()[0]["over_budget_tasks"] == 3


def test_late_verdicts_win_and_every_one_is_kept(hand_checked: Path) -> None:
    vigil = [sys.executable, "-m", "vigil"]
    trace = f"{6:032x}"
    for verdict, comment in (("failure", "wrong answer"), ("success", "fixed by the reviewer")):
        result = subprocess.run(
            [
                *vigil,
                "outcome",
                trace,
                verdict,
                "--score",
                "0.5",
                "--comment",
                comment,
                "--data-dir",
                str(hand_checked),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    row = query(hand_checked, f"SELECT outcome, outcome_source, outcome_comment FROM tasks WHERE trace_id = '{trace}'")
    assert row == [{"outcome": "success", "outcome_source": "verdict:cli", "outcome_comment": "fixed by the reviewer"}]
    assert query(hand_checked, "SELECT count(*) AS n FROM outcomes") == [{"n": 2}]

    report = subprocess.run(
        [*vigil, "report", "cost", "--data-dir", str(hand_checked), "--format", "json", "--since", "2026-09-01"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    figures = json.loads(report.stdout)
    assert figures["successful_tasks"] == 4
    assert figures["cost_per_successful_task"] == pytest.approx(0.246 / 4)
    for key in ("tasks", "failed_tasks", "total_cost_usd", "unpriced_calls"):
        assert key in figures
    by_model = subprocess.run(
        [*vigil, "report", "cost", "--data-dir", str(hand_checked), "--format", "json", "--by", "model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert {r["group"] for r in json.loads(by_model.stdout)} == {"gpt-4o-mini", "gpt-4o"}
    bad = subprocess.run(
        [*vigil, "outcome", "not-a-trace", "success", "--data-dir", str(hand_checked)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "32 hex characters" in bad.stderr


def test_verdicts_over_http_and_otlp_events(collector, channel, http_url: str, config) -> None:
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=None,
    )
    requests = load_recording(RECORDINGS / "openinference.jsonl")
    for signal, request in requests:
        if signal == "traces":
            export(request, timeout=10)
    data_dir = config.store.data_dir
    tasks = wait_for(lambda: query(data_dir, "SELECT * FROM tasks ORDER BY start_time"), lambda r: len(r) == 8)
    assert [t["outcome"] for t in tasks].count("success") == 5, "task.outcome on the root spans"
    assert {t["outcome_source"] for t in tasks} == {"attribute"}
    first, second = tasks[0]["trace_id"], tasks[1]["trace_id"]

    body = json.dumps([{"trace_id": first, "outcome": "failure", "comment": "user thumbs-down", "source": "feedback"}])
    request = urllib.request.Request(
        f"{http_url}/v1/outcomes", data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"accepted": 1}
    bad = urllib.request.Request(
        f"{http_url}/v1/outcomes", data=b'{"outcome": "success"}', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=10)
    assert error.value.code == 400 and "trace_id" in json.loads(error.value.read())["error"]

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    def kv(key: str, value: AnyValue) -> KeyValue:
        return KeyValue(key=key, value=value)

    evaluation = LogRecord(
        time_unix_nano=tasks[1]["start_time"].timestamp().__int__() * 10**9 + 10**12,
        trace_id=bytes.fromhex(second),
        event_name="gen_ai.evaluation.result",
        attributes=[
            kv("gen_ai.evaluation.name", AnyValue(string_value="answer-check")),
            kv("gen_ai.evaluation.score.label", AnyValue(string_value="pass")),
            kv("gen_ai.evaluation.score.value", AnyValue(double_value=0.92)),
        ],
    )
    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[evaluation])])])
    channel.unary_unary(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=None,
    )(logs, timeout=10)

    def judged() -> dict:
        rows = query(data_dir, "SELECT trace_id, outcome, outcome_source, outcome_score FROM tasks")
        return {r["trace_id"]: r for r in rows}

    verdicts = wait_for(judged, lambda r: r[second]["outcome_source"] != "attribute")
    assert (verdicts[first]["outcome"], verdicts[first]["outcome_source"]) == ("failure", "verdict:feedback")
    assert verdicts[second]["outcome"] == "success"  # was a failure (refused) by its attribute
    assert (verdicts[second]["outcome_source"], verdicts[second]["outcome_score"]) == (
        "verdict:otlp:answer-check",
        0.92,
    )


def test_task_span_pattern_makes_inner_spans_tasks(hand_checked: Path, tmp_path: Path) -> None:
    inner = _task(7, "agent.step", "agent")
    inner.update(trace_id=f"{5:032x}", parent_span_id=f"{5:016x}")
    write_partitioned(hand_checked, "spans", pa.Table.from_pylist([inner], SPANS_SCHEMA))
    config_file = tmp_path / "vigil.toml"
    config_file.write_text('[outcomes]\ntask_span_pattern = "agent.*"\n')
    plain = query(hand_checked, "SELECT count(*) AS n FROM tasks")
    con = connect(hand_checked, load_config(config_file, env={}))
    assert plain == [{"n": 6}]
    assert con.execute("SELECT count(*) FROM tasks").fetchone() == (7,)


def test_unknown_grouping_is_refused(hand_checked: Path) -> None:
    with pytest.raises(KeyError, match="choose one of"):
        run(connect(hand_checked), "cost_per_successful_task", group="1; DROP TABLE x")


def test_a_memo_connection_sees_each_new_verdict(hand_checked: Path) -> None:
    """The dashboards' connection keeps the folded verdicts in memory (store.verdicts): a verdict
    recorded after a query is in the next one, scoped verdicts still judge only their project, and
    every answer equals a fresh connection's."""
    record_verdicts(hand_checked, [verdict_row(f"{5:032x}", "success")])  # (a connection binds the tables it finds)
    con = connect(hand_checked)
    enable_memo(con)

    def outcomes(connection) -> list[tuple[str, str]]:
        rows = run(connection, "most_expensive_tasks", limit=10).to_pylist()
        return sorted((r["trace_id"][-1], r["outcome"]) for r in rows)

    before = outcomes(con)
    assert ("6", "unknown") in before
    assert con.execute("SELECT getvariable('vigil_verdict_memo')").fetchall() == [(True,)]
    record_verdicts(hand_checked, [verdict_row(f"{6:032x}", "success", source="cli")])
    record_verdicts(hand_checked, [verdict_row(f"{3:032x}", "failure", project="someone-else")])  # not its project
    after = outcomes(con)
    assert ("6", "success") in after and ("3", "success") in after
    assert after == outcomes(connect(hand_checked))
    assert con.execute("SELECT count(*) FROM _memo_verdicts_unscoped").fetchall() == [(2,)]
