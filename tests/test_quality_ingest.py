"""Quality signals end to end: the real OTel SDK exports to the real collector; llm_calls shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.server import Collector
from store.catalog import connect
from store.compaction import compact
from store.config import load_config
from store.queries import run
from tests.conftest import query, wait_for

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
COLUMNS = (
    "span_name, refused, refusal_rule, hedging_rule, output_format, output_signature, output_keys, output_length, "
    "validation_status, validation_error"
)


def _output(text: str | None = None, *parts: dict, finish: str = "stop") -> str:
    content = [{"type": "text", "content": text}] if text is not None else []
    return json.dumps([{"role": "assistant", "parts": content + list(parts), "finish_reason": finish}])


# (span name, extra attributes): OTel GenAI semconv spans, content on the span.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("lexical", {"gen_ai.output.messages": _output("I'm sorry, but I can't help with that request.")}),
    ("trap", {"gen_ai.output.messages": _output("I'm sorry to hear that! Your refund was issued today.")}),
    ("provider", {"gen_ai.output.messages": _output(None, {"type": "refusal", "content": "I can't assist."})}),
    ("filtered", {"gen_ai.response.finish_reasons": ["content_filter"], "gen_ai.output.messages": _output("")}),
    ("hedged", {"gen_ai.output.messages": _output("I'm not sure, but it is probably the cache.")}),
    ("markdown", {"gen_ai.output.messages": _output("## Steps\n- restart\n- retry\n\n```bash\nmake\n```")}),
    (
        "schema_ok",
        {
            "gen_ai.openai.request.response_format": json.dumps(
                {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}}
            ),
            "gen_ai.output.messages": _output('{"label": "spam"}'),
        },
    ),
    (
        "schema_bad",
        {
            "gen_ai.openai.request.response_format": json.dumps(
                {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}}
            ),
            "gen_ai.output.messages": _output('{"label": "maybe"}'),
        },
    ),
    (
        "not_json",
        {"gen_ai.output.type": "json", "gen_ai.output.messages": _output('{"label": "spam"', finish="length")},
    ),
    (
        "app_fail",
        {
            "gen_ai.output.messages": _output("Paris"),
            "vigil.validation.status": "fail",
            "vigil.validation.error": "answer not in allowed cities",
        },
    ),
]


def _send_spans(port: int, calls: list[tuple[str, dict[str, Any]]]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "quality-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    tracer = provider.get_tracer("quality-test")
    for name, extra in calls:
        with tracer.start_as_current_span(name) as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 5,
                    **extra,
                }
            )
    provider.shutdown()


def _rows(data_dir: Path, count: int) -> dict[str, dict[str, Any]]:
    rows = wait_for(lambda: query(data_dir, f"SELECT {COLUMNS} FROM llm_calls"), lambda r: len(r) == count)
    assert len(rows) == count
    return {row.pop("span_name"): row for row in rows}


def test_span_content_gets_quality_columns(collector: Collector, config) -> None:
    _send_spans(collector.grpc_port, CALLS)
    rows = _rows(config.store.data_dir, len(CALLS))
    verdicts = {name: (row["refused"], row["refusal_rule"]) for name, row in rows.items()}
    assert verdicts == {
        "lexical": (True, "en.cannot_assist@1"),
        "trap": (False, None),
        "provider": (True, "provider:refusal_field"),
        "filtered": (True, "finish_reason:content_filter"),
        "hedged": (False, None),
        "markdown": (False, None),
        "schema_ok": (False, None),
        "schema_bad": (False, None),
        "not_json": (False, None),
        "app_fail": (False, None),
    }
    assert rows["hedged"]["hedging_rule"] == "en.hedge.not_sure@1"
    assert (rows["markdown"]["output_format"], rows["markdown"]["output_signature"]) == (
        "markdown",
        "md:h2>ul>code(bash)",
    )
    ok = rows["schema_ok"]
    assert (ok["output_signature"], ok["output_keys"], ok["validation_status"]) == (
        "json:{label:str}",
        ["label"],
        "pass",
    )
    bad = rows["schema_bad"]
    assert bad["validation_status"] == "fail"
    assert (
        bad["validation_error"]
        == "output does not match the requested schema at label: 'maybe' is not one of ['spam', 'ham']"
    )
    assert rows["not_json"]["validation_status"] == "fail"
    assert rows["not_json"]["validation_error"].startswith("output is not valid JSON")
    assert rows["app_fail"]["validation_error"] == "application reported: answer not in allowed cities"
    assert rows["trap"]["validation_status"] is None, "nothing was asked for"
    assert rows["trap"]["output_length"] == len("I'm sorry to hear that! Your refund was issued today.")

    con = connect(config.store.data_dir)
    rate = run(con, "refusal_rate", group="model").to_pylist()
    assert [(r["group"], r["calls"], r["refusals"], r["provider_refusals"], r["lexical_refusals"]) for r in rate] == [
        ("gpt-4o-mini", 10, 3, 2, 1)
    ]
    assert rate[0]["refusal_rate"] == 0.3 and rate[0]["hedged"] == 1
    examples = run(con, "refusal_examples", rule="en.%").to_pylist()
    assert [(e["refusal_rule"], e["output_preview"]) for e in examples] == [
        ("en.cannot_assist@1", "I'm sorry, but I can't help with that request.")
    ]
    failures = run(con, "validation_failure_rate", group="service").to_pylist()
    assert [(f["group"], f["calls"], f["failures"], f["app_reported_failures"]) for f in failures] == [
        ("quality-bot", 4, 3, 1)
    ]


def test_event_sourced_content_gets_quality_columns(collector: Collector, config) -> None:
    """semconv ≤1.36 instrumentations put the completion in gen_ai.choice log events, not on the span."""
    resource = Resource.create({"service.name": "legacy-bot"})
    tracer_provider = TracerProvider(resource=resource)
    endpoint = f"127.0.0.1:{collector.grpc_port}"
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True))
    )
    tracer, logger = tracer_provider.get_tracer("legacy"), logger_provider.get_logger("legacy")
    choices = {
        "refuses": ({}, {"content": "Sorry, I'm not able to share other customers' orders."}, "stop"),
        "filtered": ({}, {}, "content_filter"),
        "json_bad": ({"gen_ai.openai.request.response_format": "json_object"}, {"content": "label: spam"}, "stop"),
        "json_ok": ({"gen_ai.openai.request.response_format": "json_object"}, {"content": '{"label": "ham"}'}, "stop"),
        "answers": ({}, {"content": "It depends on the plan you are on."}, "stop"),
    }
    for name, (attrs, message, finish) in choices.items():
        with tracer.start_as_current_span(name) as span:
            span.set_attributes(
                {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", **attrs}
            )
            context = span.get_span_context()
            logger.emit(
                LogRecord(
                    trace_id=context.trace_id,
                    span_id=context.span_id,
                    trace_flags=context.trace_flags,
                    body={"index": 0, "finish_reason": finish, "message": message},
                    event_name="gen_ai.choice",
                )
            )
    for provider in (tracer_provider, logger_provider):
        provider.shutdown()
    data_dir = config.store.data_dir
    wait_for(
        lambda: query(data_dir, "SELECT count(*) AS n FROM llm_calls WHERE output_format IS NOT NULL"),
        lambda r: r[0]["n"] == len(choices),
    )
    rows = _rows(data_dir, len(choices))
    assert {name: (r["refused"], r["refusal_rule"]) for name, r in rows.items()} == {
        "refuses": (True, "en.cannot_assist@1"),
        "filtered": (True, "finish_reason:content_filter"),
        "json_bad": (False, None),
        "json_ok": (False, None),
        "answers": (False, None),
    }
    assert rows["answers"]["hedging_rule"] == "en.hedge.it_depends@1"
    assert (rows["json_ok"]["output_signature"], rows["json_ok"]["validation_status"]) == ("json:{label:str}", "pass")
    assert rows["json_bad"]["validation_status"] == "fail"
    assert rows["json_bad"]["validation_error"].startswith("output is not valid JSON")
    assert rows["refuses"]["validation_status"] is None
    # Recomputing with the same rules changes nothing, in llm_messages as in llm_calls.
    from store.quality.recompute import recompute_store
    from store.quality.refusal import DEFAULT_RULES

    summary = recompute_store(Path(data_dir), DEFAULT_RULES)
    assert summary.files >= 2 and summary.rows >= 2 * len(choices)
    assert (summary.changed, summary.rewritten) == (0, 0)


def test_quality_config_reaches_the_decode_workers(tmp_path: Path) -> None:
    """decode_workers=1: normalization runs in a worker process, which must apply [quality] too."""
    settings = {"http_listen": "127.0.0.1:0", "grpc_listen": "127.0.0.1:0", "flush_interval_s": 0.2}
    settings |= {"metrics_log_interval_s": 0, "decode_workers": 1}
    overrides = {
        "store": {"data_dir": str(tmp_path / "data")},
        "collector": settings,
        "quality": {"disabled_rules": ("en.cannot_assist@1",), "hedging": False},
    }
    config = load_config(env={}, overrides=overrides)
    with Collector(config) as running:
        _send_spans(running.grpc_port, CALLS[:5])
        rows = _rows(tmp_path / "data", 5)
    assert rows["lexical"]["refused"] is False, "its rule is switched off"
    assert rows["provider"]["refusal_rule"] == "provider:refusal_field", "provider signals are no lexical rule"
    assert rows["hedged"]["hedging_rule"] is None


def test_recompute_applies_new_rules_to_stored_calls(tmp_path: Path, capsys) -> None:
    """Stored under rules with en.cannot_assist@1 off; `vigil quality recompute` with the defaults flags it."""
    import pyarrow.parquet as pq
    import pytest

    from vigil.cli import main

    data_dir = tmp_path / "data"
    settings = {"http_listen": "127.0.0.1:0", "grpc_listen": "127.0.0.1:0", "flush_interval_s": 0.2}
    settings |= {"metrics_log_interval_s": 0, "decode_workers": 0}
    overrides = {"store": {"data_dir": str(data_dir)}, "collector": settings}
    off = load_config(env={}, overrides=overrides | {"quality": {"disabled_rules": ("en.cannot_assist@1",)}})
    with Collector(off) as running:
        _send_spans(running.grpc_port, CALLS)
        _rows(data_dir, len(CALLS))
    compact(data_dir, min_files=1, grace_s=0)  # compacted files are recomputed too
    # A file written before the quality columns existed: drop them from one file.
    files = sorted((data_dir / "llm_calls").glob("date=*/*.parquet"))
    assert files and all(f.name.startswith("compacted-") for f in files)
    old = pq.read_table(files[0], partitioning=None)
    pq.write_table(old.drop_columns(["refused", "refusal_rule", "output_signature"]), files[0])

    with pytest.raises(SystemExit) as exit_:
        main(["quality", "recompute", "--data-dir", str(data_dir)])
    assert exit_.value.code == 0
    assert "calls refused" in capsys.readouterr().out
    rows = _rows(data_dir, len(CALLS))
    assert (rows["lexical"]["refused"], rows["lexical"]["refusal_rule"]) == (True, "en.cannot_assist@1")
    assert rows["provider"]["refusal_rule"] == "provider:refusal_field"
    assert rows["app_fail"]["validation_error"] == "application reported: answer not in allowed cities"
    assert rows["schema_bad"]["validation_status"] == "fail", "the schema is read again from request_params"
    assert all(row["output_signature"] is not None for row in rows.values())
    with pytest.raises(SystemExit):
        main(["quality", "recompute", "--data-dir", str(data_dir)])
    assert "0 changed (0 files rewritten)" in capsys.readouterr().out, "a second run finds nothing to change"
