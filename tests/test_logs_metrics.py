"""Logs (GenAI events) and metrics: stored, joined to their LLM calls, cross-checkable."""

from __future__ import annotations

import json
import urllib.request

import grpc
import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from store.catalog import connect
from store.queries import run
from tests.conftest import RECORDINGS, query, wait_for
from tests.otlp_json import REQUEST_TYPES, load_recording

CONTENT = "SELECT input_messages, output_messages, output_text, tool_calls, finish_reasons FROM llm_calls"


def _send_grpc(channel: grpc.Channel, signal: str, request) -> None:
    service = {"traces": "trace.v1.TraceService", "logs": "logs.v1.LogsService", "metrics": "metrics.v1.MetricsService"}
    method = f"/opentelemetry.proto.collector.{service[signal]}/Export"
    answer = channel.unary_unary(
        method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=None
    )(request, timeout=10)
    assert answer == b"", "an empty Export response: nothing rejected"


def _send_http_json(url: str, signal: str, document: dict) -> None:
    body = json.dumps(document).encode()
    request = urllib.request.Request(
        f"{url}/v1/{signal}", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {}


def _recording_lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (RECORDINGS / f"{name}.jsonl").read_text().splitlines() if line.strip()]


def _content(data_dir) -> list[dict]:
    rows = query(data_dir, f"{CONTENT} WHERE operation = 'chat' ORDER BY start_time")
    return [{k: json.loads(v) if k != "output_text" and isinstance(v, str) else v for k, v in r.items()} for r in rows]


def _settled(data_dir, calls: int, logs: int = 0) -> None:
    counts = wait_for(
        lambda: query(
            data_dir, "SELECT (SELECT count(*) FROM llm_calls) AS calls, (SELECT count(*) FROM logs) AS logs"
        ),
        lambda r: r == [{"calls": calls, "logs": logs}],
    )
    assert counts == [{"calls": calls, "logs": logs}]


def test_event_only_content_is_as_complete_as_span_content(tmp_path, channel, http_url, config) -> None:
    """otel_v2_legacy puts prompts and completions only in log events; otel_v2 (same workload) on spans."""
    for line in _recording_lines("otel_v2_legacy"):  # over OTLP/HTTP JSON, the recording's own bodies
        _send_http_json(http_url, line["signal"], line["request"])
    _settled(config.store.data_dir, 14, logs=31)
    from_events = _content(config.store.data_dir)

    from collector.server import Collector
    from tests.conftest import make_config

    with Collector(make_config(tmp_path / "spans")) as other:
        with grpc.insecure_channel(f"127.0.0.1:{other.grpc_port}") as other_channel:
            for signal, request in load_recording(RECORDINGS / "otel_v2.jsonl"):
                if signal == "traces":
                    _send_grpc(other_channel, signal, request)
        _settled(tmp_path / "spans", 14)
    from_spans = _content(tmp_path / "spans")

    assert len(from_events) == len(from_spans) == 13
    filled = [row for row in from_events if row["output_text"] or row["tool_calls"]]
    assert len(filled) == 10, "every chat call that got an answer has its content (2 failed, 1 refusal dropped)"
    for events_row, spans_row in zip(from_events, from_spans, strict=True):
        assert events_row == spans_row


@pytest.mark.parametrize("logs_first", [True, False], ids=["events-first", "spans-first"])
def test_events_join_whichever_arrives_first(channel, config, logs_first: bool) -> None:
    requests = load_recording(RECORDINGS / "openllmetry_events.jsonl")
    order = ("logs", "traces") if logs_first else ("traces", "logs")
    for wanted in order:
        for signal, request in requests:
            if signal == wanted:
                _send_grpc(channel, signal, request)
    _settled(config.store.data_dir, 15, logs=35)
    rows = query(
        config.store.data_dir,
        "SELECT input_messages, output_text FROM llm_calls WHERE operation = 'chat' AND status = 'ok' "
        "ORDER BY start_time LIMIT 1",
    )
    messages = json.loads(rows[0]["input_messages"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["parts"] == [{"type": "text", "content": "You are a concise assistant."}]
    assert rows[0]["output_text"] == "To fix the error, update the configuration file and restart the service."
    logs = query(config.store.data_dir, "SELECT event_name, count(*) AS n FROM logs GROUP BY 1 ORDER BY 1")
    assert {r["event_name"]: r["n"] for r in logs} == {
        "gen_ai.assistant.message": 1,
        "gen_ai.choice": 13,
        "gen_ai.system.message": 4,
        "gen_ai.tool.message": 1,
        "gen_ai.user.message": 16,
    }
    # The tool round trip: the assistant's call and the tool's answer, as the span's own content would show.
    tool_turn = query(
        config.store.data_dir,
        """SELECT input_messages FROM llm_calls WHERE input_messages LIKE '%"role":"tool"%'""",
    )
    roles = [m["role"] for m in json.loads(tool_turn[0]["input_messages"])]
    assert roles[roles.index("tool") - 1] == "assistant"


def test_genai_metrics_cross_check_token_totals(channel, config) -> None:
    for signal, request in load_recording(RECORDINGS / "otel_v2.jsonl"):
        _send_grpc(channel, signal, request)
    _settled(config.store.data_dir, 14, logs=13)  # one inference.operation.details event per chat call
    wait_for(lambda: query(config.store.data_dir, "SELECT count(*) AS n FROM metrics"), lambda r: r[0]["n"] == 18)
    con = connect(config.store.data_dir)
    from_metrics = [tuple(row.values()) for row in run(con, "token_usage_from_metrics").to_pylist()]
    from_spans = con.execute("SELECT sum(input_tokens), sum(output_tokens) FROM llm_calls").fetchone()
    assert from_metrics == [("example-agent-otel_v2", "input", 255), ("example-agent-otel_v2", "output", 133)]
    assert from_spans == (255, 133)
    histogram = con.execute(
        "SELECT type, temporality, bucket_counts IS NOT NULL, unit FROM metrics "
        "WHERE name = 'gen_ai.client.operation.duration' LIMIT 1"
    ).fetchone()
    assert histogram == ("histogram", "cumulative", True, "s")


def test_real_sdk_http_exporters_for_all_three_signals(http_url: str, config) -> None:
    resource = Resource.create({"service.name": "http-agent"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{http_url}/v1/traces")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{http_url}/v1/logs")))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{http_url}/v1/metrics"), 60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("agent")
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 11,
                "gen_ai.usage.completion_tokens": 7,
            }
        )
        context = span.get_span_context()
        logger = logger_provider.get_logger("agent")
        logger.emit(
            LogRecord(
                trace_id=context.trace_id,
                span_id=context.span_id,
                trace_flags=context.trace_flags,
                severity_number=SeverityNumber.INFO,
                body={"content": "What is OTLP?"},
                attributes={"gen_ai.system": "openai"},
                event_name="gen_ai.user.message",
            )
        )
        logger.emit(
            LogRecord(
                trace_id=context.trace_id,
                span_id=context.span_id,
                trace_flags=context.trace_flags,
                body={"index": 0, "finish_reason": "stop", "message": {"content": "A protocol."}},
                event_name="gen_ai.choice",
            )
        )
        logger.emit(LogRecord(body="plain application log", severity_text="WARN"))
    meter_provider.get_meter("agent").create_counter("gen_ai.client.token.usage.total").add(18, {"model": "gpt-4o"})
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()

    data_dir = config.store.data_dir
    rows = wait_for(
        lambda: query(data_dir, "SELECT * FROM llm_calls"), lambda r: len(r) == 1 and r[0]["output_text"] is not None
    )
    call = rows[0]
    assert (call["request_model"], call["input_tokens"], call["output_tokens"]) == ("gpt-4o", 11, 7)
    assert json.loads(call["input_messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is OTLP?"}]}
    ]
    assert call["output_text"] == "A protocol."
    assert call["finish_reasons"] == ["stop"]
    logs = query(data_dir, "SELECT event_name, body, severity_text FROM logs ORDER BY event_name NULLS LAST")
    assert [r["event_name"] for r in logs] == ["gen_ai.choice", "gen_ai.user.message", None]
    assert json.loads(logs[2]["body"]) == "plain application log"
    metrics = query(data_dir, "SELECT name, value, type, attributes FROM metrics")
    assert [(m["name"], m["value"], m["type"]) for m in metrics] == [("gen_ai.client.token.usage.total", 18.0, "sum")]
    assert json.loads(metrics[0]["attributes"]) == {"model": "gpt-4o"}


def test_request_types_cover_every_signal() -> None:
    assert set(REQUEST_TYPES) == {"traces", "logs", "metrics"}
