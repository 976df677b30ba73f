"""The demo dataset: the generator is deterministic, and the committed file tells its stories.

The committed recording is replayed into a real collector over gRPC (the path `vigil up` uses) and
every story in sample_data/demo/README.md is checked with the SQL a reader would write.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.server import Collector
from store.catalog import connect
from store.queries import run
from tests.conftest import query, wait_for
from vigil.up import DEMO_FILE, DEMO_LAST_DAY, load_demo, read_recording

GENERATOR = Path(__file__).resolve().parents[1] / "sample_data" / "generate.py"


def test_generator_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.otlp.jsonl.gz"
        subprocess.run([sys.executable, GENERATOR, "--days", "1", "--out", out], check=True, capture_output=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 1000
    other = tmp_path / "other.otlp.jsonl.gz"
    subprocess.run([sys.executable, GENERATOR, "--days", "1", "--seed", "8", "--out", other], check=True)
    assert other.read_bytes() != outputs[0]


@pytest.fixture
def demo_store(collector: Collector, config) -> Path:
    expected = 0
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = TraceServiceStub(channel).Export
        for request in read_recording(DEMO_FILE):
            export(request, timeout=30)
            expected += sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
    root = Path(config.store.data_dir)
    rows = wait_for(lambda: query(root, "SELECT count(*) AS n FROM spans")[0]["n"], lambda n: n == expected, 30)
    assert rows == expected
    return root


def test_committed_demo_tells_its_stories(demo_store: Path) -> None:
    assert DEMO_FILE.stat().st_size < 5_000_000
    tasks = query(demo_store, "SELECT service_name, count(*) AS n FROM tasks GROUP BY 1 ORDER BY 1")
    assert {row["service_name"] for row in tasks} == {"code-reviewer", "research-agent", "support-bot"}
    assert 1_500 <= sum(row["n"] for row in tasks) <= 3_000
    conventions = query(demo_store, "SELECT DISTINCT convention, mapping, cost_source FROM llm_calls")
    assert {row["convention"] for row in conventions} == {"otel_genai", "openinference", "openllmetry"}
    assert {(row["mapping"], row["cost_source"]) for row in conventions} == {("mapped", "table")}

    # 1. support-bot prompt support-answer v3 (from 2026-11-16) refuses far more often than v2.
    refusals = {
        row["prompt_version"]: row["share"]
        for row in query(
            demo_store,
            """SELECT prompt_version, avg((output_text LIKE 'I''m sorry%')::INT) AS share FROM llm_calls
               WHERE service_name = 'support-bot' AND prompt_name = 'support-answer' GROUP BY 1""",
        )
    }
    assert refusals["v3"] > 3 * refusals["v2"]
    # ... and the refusal detector, run at ingest, finds exactly those (store/queries/refusal_rate.sql).
    con = connect(demo_store)
    try:
        detected = {row["group"]: row for row in run(con, "refusal_rate", group="prompt_version").to_pylist()}
    finally:
        con.close()
    for version in ("v2", "v3"):
        row = detected[f"support-answer@{version}"]
        assert row["refusal_rate"] == pytest.approx(refusals[version])
        assert row["top_rule"] == "en.cannot_assist@1"
    first_v3 = query(demo_store, "SELECT min(start_time)::DATE::VARCHAR AS d FROM tasks WHERE prompt_version = 'v3'")
    assert first_v3 == [{"d": "2026-11-16"}]

    # 2. research-agent's JSON answers change shape on 2026-11-13 (and the model snapshot behind gpt-4o with them).
    shapes = query(
        demo_store,
        """SELECT start_time::DATE::VARCHAR AS day, json_exists(output_text, '$.citations') AS new_shape,
                  any_value(response_model) AS model, count(DISTINCT response_model) AS models
           FROM llm_calls WHERE service_name = 'research-agent' AND request_model = 'gpt-4o'
           GROUP BY ALL ORDER BY day""",
    )
    assert {row["day"] for row in shapes if row["new_shape"]} == {
        row["day"] for row in shapes if row["day"] >= "2026-11-13"
    }
    assert all(row["models"] == 1 and row["model"].endswith("2024-11-20") == row["new_shape"] for row in shapes)
    signatures = query(
        demo_store,
        """SELECT start_time::DATE >= DATE '2026-11-13' AS after, mode(output_signature) AS signature
           FROM llm_calls WHERE service_name = 'research-agent' AND request_model = 'gpt-4o' GROUP BY 1 ORDER BY 1""",
    )
    assert [row["signature"].split(":")[0] for row in signatures] == ["json", "json"]
    assert "summary" in signatures[0]["signature"] and "citations" in signatures[1]["signature"]

    # 3. code-reviewer's retry loops: failed tasks with 12+ calls, a large share of what failures cost.
    loops = query(
        demo_store,
        """SELECT count(*) AS n, sum(cost_usd) AS cost, min(llm_calls) AS min_calls FROM tasks
           WHERE service_name = 'code-reviewer' AND outcome = 'failure' AND llm_calls >= 10""",
    )[0]
    failed_cost = query(demo_store, "SELECT sum(cost_usd) AS c FROM tasks WHERE outcome = 'failure'")[0]["c"]
    assert loops["n"] >= 5 and loops["min_calls"] >= 12
    assert loops["cost"] > 0.5 * failed_cost

    # 4. the cheap model fails more often, so one successful review costs more than with gpt-4o-mini.
    con = connect(demo_store)
    try:
        by_model = {row["group"]: row for row in run(con, "cost_per_successful_task", group="model").to_pylist()}
    finally:
        con.close()
    nano, mini = by_model["gpt-4.1-nano"], by_model["gpt-4o-mini"]
    assert nano["success_rate"] < mini["success_rate"] - 0.15
    assert nano["cost_per_successful_task"] > 1.5 * mini["cost_per_successful_task"]


def _tasks_per_day() -> Counter[date]:
    """Tasks (root spans) per UTC start date in the committed recording."""
    return Counter(
        datetime.fromtimestamp(span.start_time_unix_nano / 1e9, UTC).date()
        for request in read_recording(DEMO_FILE)
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
        if not span.parent_span_id
    )


def test_vigil_up_moves_the_demo_to_end_yesterday(collector: Collector, config) -> None:
    """`vigil up` loads the demo so its last day is yesterday, and a load that was cut short is sent again with
    the shift it started with (kept in its mark), so its rows deduplicate even on another day."""
    root = Path(config.store.data_dir)
    per_day = "SELECT start_time::DATE AS day, count(*) AS n FROM tasks GROUP BY 1 ORDER BY 1"
    expected = [{"day": day + timedelta(days=10), "n": n} for day, n in sorted(_tasks_per_day().items())]
    (root / ".demo-loading").write_text("10")  # as an earlier `vigil up`, killed while loading, left it
    assert load_demo(collector.grpc_port, root, today=date(2030, 1, 1)) == 52
    assert not (root / ".demo-loading").exists()
    assert wait_for(lambda: query(root, per_day), lambda rows: rows == expected, 30) == expected
    spans = query(root, "SELECT count(*) AS n FROM spans")[0]["n"]
    load_demo(collector.grpc_port, root, today=DEMO_LAST_DAY + timedelta(days=11))  # ends yesterday: 10 days
    assert wait_for(lambda: query(root, "SELECT count(*) AS n FROM spans_raw")[0]["n"], lambda n: n == 2 * spans, 30)
    assert query(root, per_day) == expected and query(root, "SELECT count(*) AS n FROM spans")[0]["n"] == spans


def test_demo_last_day_is_the_recordings() -> None:
    days = _tasks_per_day()
    assert max(day for day, n in days.items() if n > 1) == DEMO_LAST_DAY, "one task starts just after midnight"
