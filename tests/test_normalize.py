"""collector.normalize against the recorded traffic of five instrumentations, then synthetic cases.

Expected values were read off the recordings (`../shared/otlp-recordings/*.jsonl`, see its
CONVENTIONS.md), not copied from the normalizer's output.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.attributes import decode_attributes
from collector.normalize import SpanFacts, normalize_llm_call, promoted_fields
from store.schema import LLM_CALLS_SCHEMA
from tests.otlp_json import load_recording

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "otlp-recordings"
GPT, GPT_DATED, EMBED = "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "text-embedding-3-small"
SORRY = "I'm sorry, but I can't help with that."
WEATHER_CALL = {
    "id": "call_81d319727e854e62a6bca6bd",
    "name": "get_weather",
    "arguments": {"location": "Tokyo", "unit": "celsius"},
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
}
SUMMARY = "To fix the error, update the configuration file and restart the service."


@functools.cache
def recorded(recording: str) -> dict[str, tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """span_id → (span name, attributes, normalized row or None), for every span recorded."""
    out = {}
    for signal, request in load_recording(RECORDINGS / f"{recording}.jsonl"):
        if signal != "traces":
            continue
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attrs = decode_attributes(span.attributes)
                    facts = SpanFacts(
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
                        status_code=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_").lower(),
                        status_message=span.status.message,
                        scope_name=scope_spans.scope.name,
                        events=[{"name": e.name, "attributes": decode_attributes(e.attributes)} for e in span.events],
                    )
                    out[span.span_id.hex()] = (span.name, attrs, normalize_llm_call(attrs, facts))
    return out


def row(recording: str, span_id: str) -> dict[str, Any]:
    found = recorded(recording)[span_id][2]
    assert found is not None, f"{recording} {span_id} should be an LLM call"
    return found


def check(actual: dict[str, Any], **expected: Any) -> None:
    """Field by field; JSON text columns are compared parsed."""
    for name, want in expected.items():
        got = actual[name]
        if name in ("input_messages", "output_messages", "tool_calls", "tool_definitions", "request_params"):
            got = None if got is None else json.loads(got)
        if name == "prompt_variables" and got is not None:
            got = json.loads(got)
        assert got == want, f"{name}: {got!r} != {want!r}"


def fits_schema(found: dict[str, Any]) -> None:
    names = set(LLM_CALLS_SCHEMA.names)
    assert set(found) <= names, set(found) - names
    pa.Table.from_pylist([found], pa.schema([f for f in LLM_CALLS_SCHEMA if f.name in found]))


def text(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": content}]}


# -- recordings: what is an LLM call, in which convention, doing what ---------------------------

MIXED_OPS = {"chat": 13, "embeddings": 1, "responses": 1}
RECORDING_NAMES = (
    "otel_v2",
    "otel_v2_legacy",
    "openllmetry",
    "openllmetry_legacy",
    "openllmetry_events",
    "openinference",
)


@pytest.mark.parametrize(
    ("recording", "convention", "operations"),
    [
        ("otel_v2", "otel_genai", {"chat": 13, "embeddings": 1}),  # openai-v2 does not trace responses.create
        ("otel_v2_legacy", "otel_genai", {"chat": 13, "embeddings": 1}),
        ("openllmetry", "openllmetry", MIXED_OPS),
        ("openllmetry_legacy", "openllmetry", MIXED_OPS),
        ("openllmetry_events", "openllmetry", MIXED_OPS),
        ("openinference", "openinference", MIXED_OPS),
    ],
)
def test_recording_llm_calls(recording: str, convention: str, operations: dict[str, int]) -> None:
    spans = recorded(recording)
    calls = [found for _, _, found in spans.values() if found is not None]
    others = sorted({name for name, _, found in spans.values() if found is None})
    assert others == ["agent.task", "tool.get_weather"]
    assert sum(found is None for _, _, found in spans.values()) == 9  # 8 tasks and 1 tool span
    assert Counter(c["operation"] for c in calls) == operations
    assert {c["convention"] for c in calls} == {convention}
    assert {c["provider"] for c in calls} == {"openai"}
    assert [c for c in calls if c["mapping"] != "mapped"] == []
    assert sum(c["status"] == "error" for c in calls) == 2  # [[error500]] once, then always-fails
    for call in calls:
        fits_schema(call)


def test_every_recording_is_covered() -> None:
    assert sorted(p.stem for p in RECORDINGS.glob("*.jsonl")) == sorted(RECORDING_NAMES)


def test_task_spans_promote_prompt_and_session() -> None:
    _, attrs, found = recorded("otel_v2")["20be5f6e48f57b92"]
    assert found is None
    assert promoted_fields(attrs) == {
        "prompt_name": "summarize",
        "prompt_version": "v1",
        "session_id": "sess-otel_v2-r00",
        "user_id": None,
    }


# -- otel_v2: openai-v2 2.4b0 with util-genai, latest GenAI semconv ----------------------------


def test_otel_v2_first_chat() -> None:
    check(
        row("otel_v2", "4111db3232b17a18"),
        provider="openai",
        operation="chat",
        request_model=GPT,
        response_model=GPT_DATED,
        response_id="chatcmpl-b08c37acec42dd089f07f7fa4f447",
        input_tokens=32,
        output_tokens=12,
        total_tokens=44,  # not sent: input + output
        cached_input_tokens=None,
        reasoning_tokens=None,
        finish_reasons=["stop"],
        request_params={"temperature": 0.2, "max_tokens": 64},
        is_streaming=None,  # openai-v2 has no streaming marker
        status="ok",
        error_type=None,
        input_messages=[
            text("system", "You are a concise assistant."),
            text(
                "user",
                "Summarize the following text in one sentence: OpenTelemetry is a collection of APIs, SDKs "
                "and tools for telemetry data.",
            ),
        ],
        output_messages=[text("assistant", SUMMARY) | {"finish_reason": "stop"}],
        output_text=SUMMARY,
        tool_calls=None,
        refusal=None,
        prompt_name=None,  # inherited from the agent.task root by the caller
        mapping="mapped",
        unmapped_fields=[],
    )


def test_otel_v2_error_has_clean_error_type_and_is_mapped() -> None:
    check(
        row("otel_v2", "cf01563b4fd09b8a"),
        status="error",
        error_type="InternalServerError",  # sent as "<class 'openai.InternalServerError'>"
        request_model=GPT,
        response_model=None,
        input_tokens=None,
        output_tokens=None,
        output_messages=None,
        finish_reasons=None,
        mapping="mapped",
        unmapped_fields=[],
    )
    assert row("otel_v2", "cf01563b4fd09b8a")["status_message"].startswith("Error code: 500 - ")


def test_otel_v2_streaming_takes_finish_reason_from_output_messages() -> None:
    check(
        row("otel_v2", "3b4b5cc8dcd214d4"),
        input_tokens=13,
        output_tokens=10,
        is_streaming=None,
        finish_reasons=["stop"],
        output_text="The answer is forty-two, according to the referenced source material.",
    )


def test_otel_v2_tool_call_and_tool_result() -> None:
    check(
        row("otel_v2", "30cd9b9765bb7e0d"),
        finish_reasons=["tool_calls"],
        tool_calls=[WEATHER_CALL],
        output_text=None,
        tool_definitions=None,  # openai-v2 does not record tools
    )
    history = json.loads(row("otel_v2", "05af7f5df72932d7")["input_messages"])
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool", "user"]
    assert history[2]["parts"] == [{"type": "tool_call"} | WEATHER_CALL]
    assert history[3]["parts"] == [
        {"type": "tool_call_response", "id": WEATHER_CALL["id"], "response": '{"location": "Tokyo", "temp_c": 18}'}
    ]


def test_otel_v2_json_mode_embeddings_and_dropped_refusal() -> None:
    check(row("otel_v2", "7e607557ef478239"), output_type="json")
    check(
        row("otel_v2", "72c00a942d0e4ad8"),
        operation="embeddings",
        request_model=EMBED,
        response_model=EMBED,
        input_tokens=6,
        output_tokens=None,
        total_tokens=None,
        mapping="mapped",
    )
    # openai-v2 drops message.refusal: the recording holds an empty part list and nothing else.
    check(
        row("otel_v2", "5eb559a1b1be12be"),
        refusal=None,
        output_text=None,
        output_messages=[{"role": "assistant", "parts": [], "finish_reason": "stop"}],
    )


# -- otel_v2_legacy: semconv 1.30, gen_ai.system, content only in log events ---------------------


def test_otel_v2_legacy() -> None:
    check(
        row("otel_v2_legacy", "11d91de2a05c41bc"),
        provider="openai",
        request_model=GPT,
        response_model=GPT_DATED,
        input_tokens=32,
        output_tokens=12,
        finish_reasons=["stop"],
        input_messages=None,
        output_messages=None,
        output_text=None,
    )
    check(
        row("otel_v2_legacy", "0593ea878d7c1fcd"),
        output_type="json",
        request_params={"response_format": "json_object"},
    )
    check(row("otel_v2_legacy", "735102b0c03bb9fe"), status="error", error_type="InternalServerError")
    check(row("otel_v2_legacy", "dd3ce5e5f8f89344"), finish_reasons=None, is_streaming=None, output_tokens=10)


# -- OpenLLMetry 0.62 (gen_ai.input.messages) and its events mode --------------------------------


def test_openllmetry_chat_refusal_and_streaming() -> None:
    check(
        row("openllmetry", "3711a67b37061d5d"),
        request_model=GPT,
        response_model=GPT_DATED,
        input_tokens=32,
        output_tokens=12,
        total_tokens=44,
        cached_input_tokens=0,
        reasoning_tokens=0,
        is_streaming=False,
        request_params={"max_tokens": 64, "temperature": 0.2},
        output_text=SUMMARY,
    )
    check(
        row("openllmetry", "b096c276bd151590"),
        refusal=SORRY,
        output_text=None,
        output_messages=[
            {"role": "assistant", "parts": [{"type": "refusal", "content": SORRY}], "finish_reason": "stop"}
        ],
    )
    check(row("openllmetry", "e79239c234dbcf99"), refusal=None, output_text=SORRY)  # a refusal in plain text
    check(
        row("openllmetry", "1bc872b5ee92edd7"), is_streaming=True, status="ok", input_tokens=13, reasoning_tokens=None
    )
    check(
        row("openllmetry", "a15af42561036a49"),
        output_type="json",
        request_params={"structured_output_schema": {"type": "json_object"}},
    )


def test_openllmetry_tools_responses_embeddings_error() -> None:
    check(
        row("openllmetry", "e150a683d4878d22"),
        finish_reasons=["tool_call"],  # OpenLLMetry renames the API's tool_calls
        tool_calls=[WEATHER_CALL],
        tool_definitions=[WEATHER_TOOL],
    )
    check(
        row("openllmetry", "baf0833a78b7a401"),
        operation="responses",  # gen_ai.operation.name says "chat" on the openai.response span
        response_id="resp_a369128f23e9fbb5b87be585837d24fc",
        input_tokens=20,
        output_tokens=10,
        input_messages=[
            text("system", "Be brief."),
            text("user", "Answer the user's question.  Question: What do the documents say?"),
        ],
    )
    check(
        row("openllmetry", "70ee7a419be907c7"),
        operation="embeddings",
        input_tokens=6,
        total_tokens=6,
        input_messages=[text("user", "first document chunk"), text("user", "second document chunk")],
    )
    check(row("openllmetry", "76fb13a0132ca7fa"), status="error", error_type="InternalServerError", mapping="mapped")


def test_openllmetry_events_mode_has_no_content_on_spans() -> None:
    check(
        row("openllmetry_events", "882daa554b8f4e18"),
        convention="openllmetry",
        input_tokens=32,
        output_tokens=12,
        input_messages=None,
        output_messages=None,
        output_text=None,
        finish_reasons=["stop"],
    )
    check(row("openllmetry_events", "fe14407715322ccd"), finish_reasons=["tool_call"], tool_definitions=None)


# -- OpenLLMetry 0.52: flattened gen_ai.prompt.N.* / gen_ai.completion.N.* ----------------------


def test_openllmetry_legacy_flattened_messages() -> None:
    check(
        row("openllmetry_legacy", "56821203c9c524d4"),
        operation="chat",
        total_tokens=44,  # llm.usage.total_tokens
        cached_input_tokens=0,  # gen_ai.usage.cache_read_input_tokens
        reasoning_tokens=0,  # llm.usage.reasoning_tokens
        finish_reasons=["stop"],
        request_params={"max_tokens": 64, "temperature": 0.2},  # the empty reasoning_effort is dropped
        is_streaming=False,
        output_messages=[text("assistant", SUMMARY) | {"finish_reason": "stop"}],
    )
    check(
        row("openllmetry_legacy", "424f3aa113dda26f"),
        refusal=SORRY,
        output_text=None,
        output_messages=[
            {"role": "assistant", "parts": [{"type": "refusal", "content": SORRY}], "finish_reason": "stop"}
        ],
    )
    check(
        row("openllmetry_legacy", "b7c70c57d3506411"),
        finish_reasons=["tool_calls"],
        tool_calls=[WEATHER_CALL],  # arguments sent as JSON text, stored parsed
        tool_definitions=[WEATHER_TOOL],  # from llm.request.functions.0.*
    )
    history = json.loads(row("openllmetry_legacy", "c0a7c28dc909cad6")["input_messages"])
    assert history[2] == {"role": "assistant", "parts": [{"type": "tool_call"} | WEATHER_CALL]}
    assert history[3] == {
        "role": "tool",
        "parts": [
            {"type": "tool_call_response", "id": WEATHER_CALL["id"], "response": '{"location": "Tokyo", "temp_c": 18}'}
        ],
    }


def test_openllmetry_legacy_responses_embeddings_streaming() -> None:
    # No operation attribute and no llm.request.type: an LLM call by provider + model.
    check(
        row("openllmetry_legacy", "7543a19253bb1132"),
        operation="responses",
        request_model=GPT,
        total_tokens=30,
        finish_reasons=None,
        output_text="The answer is forty-two, according to the referenced source material.",
    )
    check(
        row("openllmetry_legacy", "af859f6b9d2cbdc5"),
        operation="embeddings",
        input_messages=[text("user", "first document chunk"), text("user", "second document chunk")],
        mapping="mapped",
    )
    check(row("openllmetry_legacy", "8128c8e697445fcb"), is_streaming=True)
    check(row("openllmetry_legacy", "13ba47bd7341e7ab"), status="error", error_type="InternalServerError")


# -- OpenInference 0.1.66 ------------------------------------------------------------------------


def test_openinference_first_chat() -> None:
    check(
        row("openinference", "7da37b5f108b16ff"),
        provider="openai",  # llm.system
        operation="chat",
        request_model=GPT,  # from llm.invocation_parameters
        response_model=GPT_DATED,  # llm.model_name
        response_id="chatcmpl-b08c37acec42dd089f07f7fa4f447",  # only inside output.value
        input_tokens=32,
        output_tokens=12,
        total_tokens=44,
        cached_input_tokens=0,
        reasoning_tokens=0,
        request_params={"max_tokens": 64, "temperature": 0.2},
        is_streaming=False,
        finish_reasons=["stop"],
        status="ok",
        prompt_name="summarize",  # metadata = {"prompt.id": "summarize"}
        prompt_version="v1",
        prompt_template="Summarize the following text in one sentence: {text}",
        prompt_variables={"text": "OpenTelemetry is a collection of APIs, SDKs and tools for telemetry data."},
        session_id="sess-openinference",
        user_id="user-1",
        output_messages=[text("assistant", SUMMARY) | {"finish_reason": "stop"}],
    )


def test_openinference_refusal_tools_streaming_error() -> None:
    check(row("openinference", "9f7066b21e33b149"), refusal=SORRY, output_text=None)
    check(
        row("openinference", "6def0ef854dae2ce"),
        finish_reasons=["tool_calls"],
        tool_calls=[WEATHER_CALL],
        tool_definitions=[WEATHER_TOOL],  # llm.tools.0.tool.json_schema, function wrapper flattened
        request_params={"tool_choice": "auto"},
    )
    check(row("openinference", "c57fb867f5749425"), is_streaming=True)
    check(
        row("openinference", "7859360dd842ed66"),
        status="error",
        error_type="InternalServerError",
        request_model=GPT,
        response_model=None,
        prompt_version="v3",
        prompt_variables={"marker": "[[error500]]", "question": "What is 6 x 7?"},
        mapping="mapped",
    )


def test_openinference_embeddings_and_responses() -> None:
    check(
        row("openinference", "b66a568458cca8fb"),
        operation="embeddings",
        request_model=EMBED,  # embedding.invocation_parameters
        response_model=EMBED,  # embedding.model_name
        input_tokens=6,
        output_tokens=None,
        total_tokens=6,
        input_messages=[text("user", "first document chunk"), text("user", "second document chunk")],
        request_params={"encoding_format": "base64"},
        mapping="mapped",
    )
    check(
        row("openinference", "a30cf20915d60349"),
        operation="responses",
        response_id="resp_a369128f23e9fbb5b87be585837d24fc",
        output_text="The answer is forty-two, according to the referenced source material.",
        finish_reasons=None,
        input_tokens=20,
        output_tokens=10,
    )


# -- synthetic: conventions and generations the recordings do not cover --------------------------


def call(attrs: dict[str, Any], name: str = "chat", status: str = "unset", **facts: Any) -> dict[str, Any] | None:
    found = normalize_llm_call(
        attrs,
        SpanFacts(name, "client", status, facts.get("message", ""), facts.get("scope", ""), facts.get("events", [])),
    )
    if found is not None:
        fits_schema(found)
        assert found["unmapped_fields"] != ["normalizer_error"]
    return found


@pytest.mark.parametrize(
    ("attrs", "name"),
    [
        ({"gen_ai.operation.name": "invoke_agent", "gen_ai.system": "openai", "gen_ai.request.model": GPT,
          "gen_ai.usage.input_tokens": 500}, "invoke_agent planner"),
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}, "execute_tool get_weather"),
        ({"gen_ai.operation.name": "create_agent", "gen_ai.provider.name": "openai", "gen_ai.request.model": GPT}, "x"),
        ({"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions"}, "POST"),
        ({}, "empty"),
        ({"gen_ai.system": "openai"}, "provider but no model or usage"),
        ({"openinference.span.kind": "CHAIN", "llm.model_name": GPT, "llm.token_count.prompt": 3}, "chain"),
        ({"openinference.span.kind": "AGENT"}, "agent"),
        ({"openinference.span.kind": "TOOL", "tool.name": "get_weather"}, "tool"),
        ({"traceloop.span.kind": "workflow", "traceloop.entity.name": "pipeline"}, "pipeline.workflow"),
    ],
)  # fmt: skip
def test_not_llm_calls(attrs: dict[str, Any], name: str) -> None:
    assert call(attrs, name) is None


@pytest.mark.parametrize(
    ("attrs", "name", "expected"),
    [
        # Semconv < 1.27: prompt/completion tokens, no operation: the span name says chat.
        ({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo", "gen_ai.usage.prompt_tokens": 11,
          "gen_ai.usage.completion_tokens": 7}, "chat gpt-3.5-turbo",
         {"convention": "otel_genai", "operation": "chat", "input_tokens": 11, "output_tokens": 7, "total_tokens": 18,
          "mapping": "mapped"}),
        # Old OpenLLMetry: the same token names next to llm.request.type.
        ({"llm.request.type": "completion", "gen_ai.system": "OpenAI", "gen_ai.request.model": "davinci-002",
          "gen_ai.usage.prompt_tokens": "5", "gen_ai.usage.completion_tokens": 9.0, "llm.usage.total_tokens": 14},
         "openai.completion",
         {"convention": "openllmetry", "operation": "text_completion", "provider": "openai", "input_tokens": 5,
          "output_tokens": 9, "total_tokens": 14}),
        # Anthropic through semconv ≥1.37 with prompt caching.
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
          "gen_ai.response.model": "claude-sonnet-4-5-20250929", "gen_ai.usage.input_tokens": 1200,
          "gen_ai.usage.output_tokens": 80, "gen_ai.usage.cache_read.input_tokens": 1024,
          "gen_ai.usage.cache_creation.input_tokens": 150, "gen_ai.response.finish_reasons": ["end_turn"]},
         "chat claude-sonnet-4-5",
         {"provider": "anthropic", "cached_input_tokens": 1024, "cache_creation_input_tokens": 150,
          "finish_reasons": ["end_turn"], "total_tokens": 1280}),
        # Anthropic through OpenLLMetry's anthropic instrumentation (underscore cache names).
        ({"llm.request.type": "chat", "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-3-5-haiku",
          "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2,
          "gen_ai.usage.cache_read_input_tokens": 4, "gen_ai.usage.cache_creation_input_tokens": 6},
         "anthropic.chat",
         {"convention": "openllmetry", "provider": "anthropic", "cached_input_tokens": 4,
          "cache_creation_input_tokens": 6}),
        # Semconv provider values of every generation are kept, lowercased; llm.provider ranks after gen_ai.*.
        ({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "aws.bedrock", "gen_ai.request.model": "m",
          "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}, "chat m", {"provider": "aws.bedrock"}),
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "az.ai.openai", "gen_ai.request.model": "m",
          "llm.provider": "azure"}, "chat m", {"provider": "az.ai.openai", "mapping": "unmapped"}),
        ({"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "GCP.Vertex_AI",
          "gen_ai.request.model": "gemini-2.5-flash", "gen_ai.usage.input_tokens": 3,
          "gen_ai.usage.output_tokens": 4, "gen_ai.usage.reasoning.output_tokens": 2},
         "generate_content gemini-2.5-flash",
         {"provider": "gcp.vertex_ai", "operation": "generate_content", "reasoning_tokens": 2}),
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "vertex_ai", "gen_ai.request.model": "m"}, "chat m",
         {"provider": "vertex_ai"}),
        # OpenInference spells some providers its own way.
        ({"openinference.span.kind": "llm", "llm.provider": "mistralai", "llm.system": "mistralai",
          "llm.model_name": "mistral-large", "llm.token_count.prompt": 2, "llm.token_count.completion": 1,
          "llm.token_count.prompt_details.cache_write": 5},
         "MistralAsyncClient.chat",
         {"convention": "openinference", "provider": "mistral_ai", "request_model": None,
          "response_model": "mistral-large", "cache_creation_input_tokens": 5, "is_streaming": None}),
    ],
)  # fmt: skip
def test_other_conventions(attrs: dict[str, Any], name: str, expected: dict[str, Any]) -> None:
    found = call(attrs, name)
    assert found is not None
    check(found, **expected)


@pytest.mark.parametrize(
    ("attrs", "status", "mapping", "unmapped"),
    [
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": GPT}, "unset",
         "unmapped", ["input_tokens", "output_tokens"]),
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 1,
          "gen_ai.usage.output_tokens": 2}, "ok", "unmapped", ["model"]),
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": GPT}, "error",
         "mapped", []),  # failed before the provider counted tokens
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": GPT,
          "gen_ai.usage.input_tokens": "lots"}, "error", "unmapped", ["input_tokens"]),
        ({"gen_ai.operation.name": "embeddings", "gen_ai.system": "openai", "gen_ai.request.model": EMBED,
          "gen_ai.usage.input_tokens": 4}, "unset", "mapped", []),
        ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.response.model": GPT_DATED,
          "gen_ai.usage.input_tokens": 4, "gen_ai.usage.output_tokens": 1,
          "gen_ai.usage.cache_read.input_tokens": "n/a"}, "unset", "unmapped", ["cached_input_tokens"]),
    ],
)  # fmt: skip
def test_mapping(attrs: dict[str, Any], status: str, mapping: str, unmapped: list[str]) -> None:
    found = call(attrs, "chat", status)
    assert found is not None
    check(found, mapping=mapping, unmapped_fields=unmapped)


def test_response_model_is_not_copied_into_request_model() -> None:
    found = call({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.response.model": GPT_DATED})
    check(found, request_model=None, response_model=GPT_DATED)
    assert "model" not in found["unmapped_fields"]


BASE = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": GPT}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3.0},
         {"input_tokens": 12, "output_tokens": 3}),
        ({"gen_ai.usage.input_tokens": True, "gen_ai.usage.output_tokens": -5},
         {"input_tokens": None, "output_tokens": None, "unmapped_fields": ["input_tokens", "output_tokens"]}),
        ({"gen_ai.usage.input_tokens": 2**70, "gen_ai.usage.output_tokens": "9" * 5000},
         {"input_tokens": None, "output_tokens": None}),
        ({"gen_ai.usage.input_tokens": float("nan"), "gen_ai.usage.output_tokens": [1, 2]}, {"input_tokens": None}),
        ({"gen_ai.usage.input_tokens": "abc", "llm.token_count.prompt": 7}, {"input_tokens": 7}),  # next key wins
        ({"gen_ai.request.model": ["a", "list"]}, {"request_model": None}),
        ({"gen_ai.request.model": 4}, {"request_model": "4"}),
        ({"gen_ai.input.messages": "[{broken json"}, {"input_messages": [text("user", "[{broken json")]}),
        ({"gen_ai.input.messages": "plain prompt"}, {"input_messages": [text("user", "plain prompt")]}),
        ({"gen_ai.input.messages": 42, "gen_ai.output.messages": None},
         {"input_messages": None, "output_messages": None}),
        ({"gen_ai.input.messages": "[" * 100_000}, {"input_messages": [text("user", "[" * 100_000)]}),
        ({"gen_ai.output.messages": [1, None, "hi", {"role": 5, "parts": "not a list"}, {"parts": [{"x": 1}]}]},
         {"output_messages": [text("assistant", "hi"), {"role": "5", "parts": []},
                              {"role": "assistant", "parts": [{"x": 1}]}], "output_text": "hi"}),
        ({"gen_ai.input.messages": {"nested": {"dict": {"deeper": [1, 2]}}}},
         {"input_messages": [{"role": "user", "parts": []}]}),
        ({"gen_ai.response.finish_reasons": 7}, {"finish_reasons": None}),
        ({"gen_ai.response.finish_reasons": '["stop", "length"]'}, {"finish_reasons": ["stop", "length"]}),
        ({"gen_ai.response.finish_reasons": "stop"}, {"finish_reasons": ["stop"]}),
        ({"gen_ai.response.finish_reasons": [None, 3, "stop"]}, {"finish_reasons": ["3", "stop"]}),
        ({"gen_ai.tool.definitions": "{{{"}, {"tool_definitions": None}),
        ({"gen_ai.tool.definitions": {"name": "one"}}, {"tool_definitions": [{"name": "one"}]}),
        ({"gen_ai.is_streaming": "true"}, {"is_streaming": True}),
        ({"gen_ai.is_streaming": "yes"}, {"is_streaming": None}),
        # An unreadable operation falls back to the span name ("chat gpt-4o-mini").
        ({"gen_ai.operation.name": {"weird": 1}, "gen_ai.usage.input_tokens": 1}, {"operation": "chat"}),
        ({"gen_ai.response.time_to_first_chunk": 0.25}, {"time_to_first_token_ms": 250.0}),
        ({"gen_ai.response.time_to_first_chunk": "soon"}, {"time_to_first_token_ms": None}),
        ({"error.type": "<class 'openai.RateLimitError'>"}, {"status": "error", "error_type": "RateLimitError"}),
        ({"error.type": "timeout"}, {"status": "error", "error_type": "timeout"}),
        ({"error.type": 500}, {"status": "error", "error_type": "500"}),
        ({"error.type": ""}, {"status": "ok", "error_type": None}),
        ({"prompt.version": 3, "prompt.name": ["x"], "session.id": {"a": 1}},
         {"prompt_version": "3", "prompt_name": None, "session_id": None}),
        ({"llm.prompt_template.variables": "not json"}, {"prompt_variables": None}),
        ({"gen_ai.request.temperature": "hot", "gen_ai.request.stop_sequences": ["\n"], "gen_ai.request.seed": None},
         {"request_params": {"temperature": "hot", "stop_sequences": ["\n"]}}),
    ],
)  # fmt: skip
def test_garbage_values_give_sane_rows(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    found = call(BASE | extra, "chat gpt-4o-mini")
    assert found is not None
    check(found, **expected)


def test_garbage_events_and_openinference_bodies() -> None:
    events = [None, "x", {"name": "exception", "attributes": "oops"}, {"name": "exception"}]
    check(call(BASE, status="error", events=events), status="error", error_type=None)
    found = call(
        {
            "openinference.span.kind": "LLM",
            "llm.invocation_parameters": "not json",
            "output.value": '{"choices": 5, "id": ["x"], "object": 3}',
            "output.mime_type": "application/json",
            "llm.input_messages.0.message.role": 7,
            "llm.input_messages.x.message.role": "user",
            "llm.input_messages.99999999.message.content": "too far",
            "llm.tools.0.tool.json_schema": "{bad",
            "llm.finish_reason": ["stop", None],
        },
        "ChatCompletion",
    )
    check(
        found,
        request_model=None,
        response_id=None,
        operation="chat",
        input_messages=[{"role": "7", "parts": []}],
        tool_definitions=None,
        finish_reasons=["stop"],
        unmapped_fields=["model", "input_tokens", "output_tokens"],
    )


def test_exception_event_and_status_message_give_the_error_type() -> None:
    events = [{"name": "exception", "attributes": {"exception.type": "anthropic.APITimeoutError"}}]
    check(call(BASE, status="error", events=events), error_type="APITimeoutError")
    check(call(BASE, status="error", message="RateLimitError: slow down"), error_type="RateLimitError")
    check(call(BASE, status="error", message="Error code: 429 - slow down"), error_type=None)
    # An exception recorded on a span that still succeeded (a retried step) is no error.
    check(call(BASE, status="ok", events=events), status="ok", error_type=None)


def test_content_shapes() -> None:
    found = call(
        BASE
        | {
            "gen_ai.system_instructions": '[{"type": "text", "content": "Be terse."}]',
            "gen_ai.input.messages": [  # structured, as on the v2 log event; OpenAI chat shape inside
                {"role": "user", "content": [{"type": "text", "text": "Describe"},
                                             {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"deep\": true}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
            ],
            "gen_ai.output.messages": json.dumps([
                {"role": "assistant", "parts": [{"type": "reasoning", "content": "hmm"},
                                                {"type": "text", "content": "A "}, {"type": "text", "content": "cat."}],
                 "finish_reason": "stop"},
                {"role": "assistant", "parts": [{"type": "text", "content": "Second choice."}],
                 "finish_reason": "length"},
            ]),
        }
    )  # fmt: skip
    check(
        found,
        input_messages=[
            text("system", "Be terse."),
            {"role": "user", "parts": [{"type": "text", "content": "Describe"},
                                       {"type": "uri", "modality": "image", "uri": "https://x/cat.png"}]},
            {"role": "assistant",
             "parts": [{"type": "tool_call", "id": "c1", "name": "look", "arguments": {"deep": True}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "a cat"}]},
        ],
        output_text="A cat.\nSecond choice.",
        finish_reasons=["stop", "length"],
    )  # fmt: skip
    plain = call(BASE | {"gen_ai.system_instructions": "Be terse.", "gen_ai.prompt": "Hi"})
    check(plain, input_messages=[text("system", "Be terse."), text("user", "Hi")])


def test_openllmetry_multimodal_content_and_prompt_name_keys() -> None:
    found = call(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": GPT,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": '[{"type": "text", "text": "What is this?"}, '
            '{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]',
            "gen_ai.completion.0.content": "A dot.",
            "gen_ai.completion.0.finish_reason": "stop",
            "traceloop.prompt.key": "describe-image",
            "traceloop.prompt.version": 5,
            "traceloop.prompt.template": "What is {thing}?",
            "traceloop.prompt.template_variables.thing": "this",
            "traceloop.association.properties.user_id": "u-7",
        },
        "openai.chat",
    )
    check(
        found,
        convention="openllmetry",
        input_messages=[
            {"role": "user", "parts": [{"type": "text", "content": "What is this?"},
                                       {"type": "uri", "modality": "image", "uri": "data:image/png;base64,AAAA"}]},
        ],
        output_messages=[text("assistant", "A dot.") | {"finish_reason": "stop"}],
        prompt_name="describe-image",
        prompt_version="5",
        prompt_template="What is {thing}?",
        prompt_variables={"thing": "this"},
        user_id="u-7",
    )  # fmt: skip
    # Flattened gen_ai.prompt.N.* keys are messages, never a prompt name.
    check(call(BASE | {"gen_ai.prompt.0.content": "hi", "gen_ai.prompt.0.role": "user"}), prompt_name=None)


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"gen_ai.prompt.name": "a", "prompt.name": "b", "gen_ai.prompt.version": "2"},
         {"prompt_name": "a", "prompt_version": "2", "session_id": None, "user_id": None}),
        ({"langfuse.observation.prompt.name": "lf", "langfuse.observation.prompt.version": 3,
          "gen_ai.conversation.id": "conv-1", "enduser.id": "e-1"},
         {"prompt_name": "lf", "prompt_version": "3", "session_id": "conv-1", "user_id": "e-1"}),
        ({"metadata": '{"prompt.id": "qa", "prompt.version": "v3"}', "llm.prompt_template.version": "v9"},
         {"prompt_name": "qa", "prompt_version": "v9", "session_id": None, "user_id": None}),
        ({"metadata": "{not json", "user.id": 12},
         {"prompt_name": None, "prompt_version": None, "session_id": None, "user_id": "12"}),
    ],
)  # fmt: skip
def test_promoted_fields(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert promoted_fields(attrs) == expected


GARBAGE = [None, "", " ", "x", "[", "{", "[1, 2", "null", "123", "-1", -1, 0, 2**63, 1e308, float("inf"), True,
           [], [None], [1, "a", {"b": 2}], {}, {"a": {"b": [1]}}, '[{"role": 1, "parts": 5}]', '{"type": 3}',
           '[{"type": "text"}]', '{"choices": [{"message": 1}], "output": [{"content": [7]}]}']  # fmt: skip


def test_recorded_spans_with_garbage_values_never_break(caplog: pytest.LogCaptureFixture) -> None:
    """Every recorded LLM span, with random attributes swapped for garbage (fixed seed)."""
    chooser = random.Random(20240601)
    spans = [(name, attrs) for rec in RECORDING_NAMES for name, attrs, found in recorded(rec).values() if found]
    for _ in range(400):
        name, attrs = chooser.choice(spans)
        broken = dict(attrs)
        for key in chooser.sample(sorted(broken), k=min(len(broken), chooser.randint(1, 6))):
            broken[key] = chooser.choice(GARBAGE)
        found = call(broken, name, chooser.choice(["unset", "ok", "error"]))
        if found is not None:
            assert found["mapping"] in ("mapped", "unmapped")
            assert found["status"] in ("ok", "error")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
