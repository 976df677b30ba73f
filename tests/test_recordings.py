"""Each real recording in ../shared/otlp-recordings replayed into the live collector.

Expected values were read off the recordings by hand (see CONVENTIONS.md there): every setup ran
the same eight agent tasks; OpenInference and OpenLLMetry also instrument the Responses API call.
Field-by-field checks of single spans live in test_normalize.py; this checks the whole path.
"""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import RECORDINGS, query, wait_for
from tests.otlp_json import load_recording

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# recording: (llm calls, {operation: count}, input tokens, output tokens, streaming calls, convention)
EXPECTED = {
    "otel_v2": (14, {"chat": 13, "embeddings": 1}, 255, 133, None, "otel_genai"),
    "otel_v2_legacy": (14, {"chat": 13, "embeddings": 1}, 255, 133, None, "otel_genai"),
    "openinference": (15, {"chat": 13, "embeddings": 1, "responses": 1}, 275, 143, 2, "openinference"),
    "openllmetry": (15, {"chat": 13, "embeddings": 1, "responses": 1}, 275, 143, 2, "openllmetry"),
    "openllmetry_legacy": (15, {"chat": 13, "embeddings": 1, "responses": 1}, 275, 143, 2, "openllmetry"),
    "openllmetry_events": (15, {"chat": 13, "embeddings": 1, "responses": 1}, 275, 143, 2, "openllmetry"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recording_produces_expected_rows(name: str, channel: grpc.Channel, config) -> None:
    export = channel.unary_unary(
        EXPORT,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=ExportTraceServiceResponse.FromString,
    )
    for signal, request in load_recording(RECORDINGS / f"{name}.jsonl"):
        if signal == "traces":
            assert export(request, timeout=10) == ExportTraceServiceResponse()
    calls, operations, tokens_in, tokens_out, streaming, convention = EXPECTED[name]
    data_dir = config.store.data_dir

    tasks = wait_for(lambda: query(data_dir, "SELECT * FROM tasks ORDER BY start_time"), lambda r: len(r) == 8)
    assert len(tasks) == 8
    assert {t["name"] for t in tasks} == {"agent.task"}
    assert [t["status"] for t in tasks].count("error") == 1
    assert sum(t["llm_calls"] for t in tasks) == calls
    assert sum(t["tool_calls"] for t in tasks) == 1

    summary = query(
        data_dir,
        """SELECT count(*) AS calls, sum(input_tokens) AS tokens_in, sum(output_tokens) AS tokens_out,
                  count(*) FILTER (is_streaming) AS streaming, count(*) FILTER (status = 'error') AS errors,
                  count(*) FILTER (mapping = 'unmapped') AS unmapped, list(DISTINCT convention) AS conventions,
                  list(DISTINCT provider) AS providers
           FROM llm_calls""",
    )[0]
    assert (summary["calls"], summary["tokens_in"], summary["tokens_out"]) == (calls, tokens_in, tokens_out)
    assert summary["errors"] == 2
    assert summary["unmapped"] == 0
    assert summary["conventions"] == [convention]
    assert summary["providers"] == ["openai"]
    assert summary["streaming"] == (streaming or 0)
    by_operation = query(data_dir, "SELECT operation, count(*) AS n FROM llm_calls GROUP BY 1")
    assert {r["operation"]: r["n"] for r in by_operation} == operations

    models = query(data_dir, "SELECT response_model, count(*) AS n FROM llm_calls GROUP BY 1")
    chat_ok = calls - 2 - 1  # minus the two failed calls and the embeddings call
    assert {r["response_model"]: r["n"] for r in models} == {
        "gpt-4o-mini-2024-07-18": chat_ok,
        "text-embedding-3-small": 1,
        None: 2,
    }
    # Every call knows the prompt it came from: on the span (OpenInference) or inherited from the task.
    prompts = query(data_dir, "SELECT count(*) AS n FROM llm_calls WHERE prompt_name IS NULL OR prompt_version IS NULL")
    assert prompts == [{"n": 0}]
