"""The demo dataset: the generator is deterministic, and the committed file tells its stories.

The committed recording is replayed into a real collector over gRPC (the path `vigil up` uses) and
every story in sample_data/demo/README.md is checked with the SQL a reader would write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.server import Collector
from store.catalog import connect
from store.queries import run
from tests.conftest import query, wait_for
from vigil.up import DEMO_FILE, read_recording

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
