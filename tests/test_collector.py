"""End to end: the real OTel SDK exporter → the real collector → Parquet → DuckDB views."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import Compression, OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector.server import Collector
from tests.conftest import query, wait_for


def _provider(port: int, compression: Compression | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, compression=compression)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _send_agent_task(provider: TracerProvider, fail: bool = False) -> tuple[str, str]:
    tracer = provider.get_tracer("example.agent")
    with tracer.start_as_current_span("agent.task", attributes={"prompt.id": "qa", "prompt.version": "v3"}) as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.output_tokens": 30,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Hi?"}]}]',
                    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"Hello!"}],'
                    '"finish_reason":"stop"}]',
                }
            )
        with tracer.start_as_current_span("tool.get_weather", attributes={"tool.name": "get_weather"}):
            pass
        if fail:
            root.set_status(Status(StatusCode.ERROR, "gave up"))
    ctx = root.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


@pytest.mark.parametrize("compression", [None, Compression.Gzip], ids=["plain", "gzip"])
def test_sdk_export_is_queryable(collector: Collector, config, compression) -> None:
    provider = _provider(collector.grpc_port, compression)
    trace_id, root_id = _send_agent_task(provider)
    assert provider.force_flush(10_000)
    data_dir = config.store.data_dir

    # Spans are committed after the LLM calls they contain, so once the task is there, all is.
    tasks = wait_for(lambda: query(data_dir, "SELECT * FROM tasks"), lambda rows: len(rows) == 1, 5)
    assert len(tasks) == 1, "acknowledged spans must be queryable within 5 s"
    calls = query(data_dir, "SELECT * FROM llm_calls")
    assert len(calls) == 1
    call = calls[0]
    assert call["trace_id"] == trace_id
    assert call["service_name"] == "support-bot"
    assert (call["provider"], call["operation"]) == ("openai", "chat")
    assert (call["request_model"], call["response_model"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (call["input_tokens"], call["output_tokens"], call["total_tokens"]) == (120, 30, 150)
    assert call["output_text"] == "Hello!"
    assert call["finish_reasons"] == ["stop"]
    assert call["status"] == "ok"
    # Prompt name and version live on the root span; the call inherits them.
    assert (call["prompt_name"], call["prompt_version"]) == ("qa", "v3")

    task = tasks[0]
    assert (task["trace_id"], task["root_span_id"], task["name"]) == (trace_id, root_id, "agent.task")
    assert (task["llm_calls"], task["tool_calls"], task["input_tokens"], task["output_tokens"]) == (
        1,
        1,
        120,
        30,
    )
    assert task["service_name"] == "support-bot"
    assert task["duration_ms"] > 0
    # Content is stored once, normalized, in llm_calls; the span keeps its other attributes.
    chat_attributes = json.loads(
        query(data_dir, "SELECT attributes FROM spans WHERE genai_kind = 'llm'")[0]["attributes"]
    )
    assert "gen_ai.input.messages" not in chat_attributes and "gen_ai.output.messages" not in chat_attributes
    assert chat_attributes["gen_ai.request.model"] == "gpt-4o-mini"
    spans = query(data_dir, "SELECT name, genai_kind FROM spans ORDER BY name")
    assert [(s["name"], s["genai_kind"]) for s in spans] == [
        ("agent.task", None),
        ("chat gpt-4o-mini", "llm"),
        ("tool.get_weather", "tool"),
    ]
    provider.shutdown()


def test_failed_task_status(collector: Collector, config) -> None:
    provider = _provider(collector.grpc_port)
    _send_agent_task(provider, fail=True)
    provider.force_flush(10_000)
    tasks = wait_for(lambda: query(config.store.data_dir, "SELECT * FROM tasks"), lambda rows: len(rows) == 1)
    assert (tasks[0]["status"], tasks[0]["status_message"]) == ("error", "gave up")
    provider.shutdown()


def test_clean_shutdown_flushes_everything(config) -> None:
    """Stopping right after the ack still leaves every span in Parquet and nothing in the WAL."""
    slow = config.__class__(
        collector=config.collector.__class__(**{**config.collector.__dict__, "flush_interval_s": 3600}),
        store=config.store,
    )
    with Collector(slow) as running:
        provider = _provider(running.grpc_port)
        for _ in range(20):
            _send_agent_task(provider)
        assert provider.force_flush(10_000)
        provider.shutdown()
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM tasks") == [{"n": 20}]
    assert query(config.store.data_dir, "SELECT count(*) AS n FROM spans") == [{"n": 60}]
    with Collector(slow) as restarted:
        assert restarted.counters.get("stored_spans") == 0, "a clean stop leaves nothing to replay"
