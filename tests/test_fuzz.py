"""Fuzzing the decoders and the live server: bad input gets a proper answer, never a crash.

Two layers, both driven by hypothesis:
- the pure path an Export takes (`FromString` → `validate` → `decode`), fed arbitrary bytes,
  byte-level mutations of valid requests of all three signals, and structured requests whose
  GenAI attributes have every wrong shape a sender can produce. Parsing may refuse (DecodeError,
  answered INVALID_ARGUMENT); whatever it accepts must decode without raising, without the
  normalizer falling back to its error row, one row per accepted item, in the stored schema.
- a running collector, over gRPC and HTTP (protobuf and JSON, plain and gzip): each answer is OK
  or INVALID_ARGUMENT / 200 or 400, never INTERNAL, UNKNOWN, 500 or a dropped connection, and
  afterwards the collector is healthy, stores a valid request and has logged no error.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector import normalize
from collector.attributes import encode_attributes, encode_value
from collector.conventions import openinference, openllmetry, otel_genai
from collector.genai_events import GENAI_EVENTS, decode_genai_event
from collector.otlp_json import encode_json
from collector.server import Collector
from collector.signals import LOGS, METRICS, SIGNALS, TRACES, Signal
from store.schema import PARTITION_TIME, TABLES
from tests.conftest import RECORDINGS, query, wait_for
from tests.otlp_json import load_recording

NOW = 1_790_000_000_000_000_000
BY_NAME = {"traces": TRACES, "logs": LOGS, "metrics": METRICS}
# The table holding one row per accepted item of each signal.
ITEM_TABLE = {"spans": "spans", "log_records": "logs", "data_points": "metrics"}
PURE = settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))
# Structured requests are costly to generate; fewer of them still cover every attribute shape.
STRUCTURED = settings(PURE, max_examples=100)
LIVE = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


# -- valid requests of every signal, the seeds that mutations start from -------------------------


def _seed_traces() -> Message:
    trace_id, root = bytes(range(1, 17)), b"\x01" * 8
    times = {"start_time_unix_nano": NOW, "end_time_unix_nano": NOW + 900_000_000}
    agent = Span(
        trace_id=trace_id,
        span_id=root,
        name="invoke_agent planner",
        attributes=encode_attributes(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.prompt.name": "triage", "prompt.version": 3}
        ),
        **times,
    )
    chat = Span(
        trace_id=trace_id,
        span_id=b"\x02" * 8,
        parent_span_id=root,
        name="chat gpt-4o",
        kind=Span.SPAN_KIND_CLIENT,
        attributes=encode_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 80,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.response.finish_reasons": ["tool_calls"],
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}"}],
                        }
                    ]
                ),
                "gen_ai.tool.definitions": json.dumps([{"type": "function", "function": {"name": "f"}}]),
            }
        ),
        status=Status(code=Status.STATUS_CODE_ERROR, message="RateLimitError: slow down"),
        events=[
            Span.Event(
                time_unix_nano=NOW, name="exception", attributes=encode_attributes({"exception.type": "openai.X"})
            )
        ],
        links=[Span.Link(trace_id=trace_id, span_id=root, attributes=encode_attributes({"k": "v"}))],
        **times,
    )
    inference = Span(
        trace_id=trace_id,
        span_id=b"\x03" * 8,
        parent_span_id=root,
        name="ChatCompletion",
        attributes=encode_attributes(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "claude-sonnet-4",
                "llm.provider": "anthropic",
                "llm.token_count.prompt": "17",
                "llm.token_count.completion": 4.0,
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "hello",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"q": 1}',
                "llm.invocation_parameters": '{"temperature": 0}',
                "metadata": '{"prompt.name": "p", "prompt.version": "2"}',
            }
        ),
        **times,
    )
    traceloop = Span(
        trace_id=trace_id,
        span_id=b"\x04" * 8,
        parent_span_id=root,
        name="openai.chat",
        attributes=encode_attributes(
            {
                "llm.request.type": "chat",
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": '[{"type": "text", "text": "hey"}]',
                "gen_ai.completion.0.content": "yo",
                "gen_ai.completion.0.finish_reason": "stop",
                "llm.usage.total_tokens": 9,
                "llm.request.functions.0.name": "f",
                "traceloop.prompt.template_variables.city": "Paris",
            }
        ),
        **times,
    )
    resource = Resource(attributes=encode_attributes({"service.name": "agent", "vigil.project": "p1"}))
    scope = InstrumentationScope(name="opentelemetry.instrumentation.openai.v1", version="0.40")
    return TRACES.request_type(
        resource_spans=[
            ResourceSpans(
                resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=[agent, chat, inference, traceloop])]
            )
        ]
    )


def _seed_logs() -> Message:
    trace_id, span_id = bytes(range(1, 17)), b"\x02" * 8
    records = [
        LogRecord(
            time_unix_nano=NOW,
            event_name="gen_ai.user.message",
            body=encode_value({"content": "hi"}),
            trace_id=trace_id,
            span_id=span_id,
        ),
        LogRecord(
            observed_time_unix_nano=NOW,
            body=encode_value({"role": "system", "content": [{"type": "text", "text": "be brief"}]}),
            attributes=encode_attributes({"event.name": "gen_ai.system.message"}),
            trace_id=trace_id,
            span_id=span_id,
        ),
        LogRecord(
            time_unix_nano=NOW,
            event_name="gen_ai.choice",
            body=encode_value(
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "content": "ok",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
                    },
                }
            ),
            trace_id=trace_id,
            span_id=span_id,
        ),
        LogRecord(
            time_unix_nano=NOW,
            event_name="gen_ai.client.inference.operation.details",
            attributes=encode_attributes(
                {
                    "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "q"}]}],
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "a"}]),
                    "gen_ai.system_instructions": "be nice",
                }
            ),
            trace_id=trace_id,
            span_id=span_id,
        ),
        LogRecord(time_unix_nano=NOW, severity_number=9, severity_text="INFO", body=encode_value("plain log line")),
    ]
    resource = Resource(attributes=encode_attributes({"service.name": "agent"}))
    return LOGS.request_type(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


def _seed_metrics() -> Message:
    point_attrs = encode_attributes({"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
    metrics = [
        m.Metric(
            name="gen_ai.client.token.usage",
            unit="{token}",
            histogram=m.Histogram(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_DELTA,
                data_points=[
                    m.HistogramDataPoint(
                        time_unix_nano=NOW,
                        start_time_unix_nano=NOW - 10**9,
                        count=3,
                        sum=1500.0,
                        min=100.0,
                        max=1000.0,
                        bucket_counts=[0, 1, 2],
                        explicit_bounds=[64.0, 256.0],
                        attributes=point_attrs,
                    )
                ],
            ),
        ),
        m.Metric(
            name="requests",
            sum=m.Sum(
                is_monotonic=True,
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                data_points=[m.NumberDataPoint(time_unix_nano=NOW, as_int=7)],
            ),
        ),
        m.Metric(name="queue", gauge=m.Gauge(data_points=[m.NumberDataPoint(time_unix_nano=NOW, as_double=0.5)])),
        m.Metric(
            name="latency",
            exponential_histogram=m.ExponentialHistogram(
                data_points=[m.ExponentialHistogramDataPoint(time_unix_nano=NOW, count=2, sum=3.0, scale=1)]
            ),
        ),
        m.Metric(
            name="sizes",
            summary=m.Summary(data_points=[m.SummaryDataPoint(time_unix_nano=NOW, count=1, sum=2.0)]),
        ),
    ]
    resource = Resource(attributes=encode_attributes({"service.name": "agent"}))
    return METRICS.request_type(
        resource_metrics=[m.ResourceMetrics(resource=resource, scope_metrics=[m.ScopeMetrics(metrics=metrics)])]
    )


def _seeds() -> list[tuple[Signal, bytes]]:
    seeds = [(TRACES, _seed_traces()), (LOGS, _seed_logs()), (METRICS, _seed_metrics())]
    for path in sorted(RECORDINGS.glob("*.jsonl")):  # one real request per signal and recording
        firsts: dict[str, Message] = {}
        for signal, request in load_recording(path):
            firsts.setdefault(signal, request)
        seeds += [(BY_NAME[signal], request) for signal, request in firsts.items()]
    return [(signal, request.SerializeToString()) for signal, request in seeds]


SEEDS = _seeds()


# -- strategies ---------------------------------------------------------------------------------

ATTRIBUTE_KEYS = sorted(
    {
        *normalize.PROVIDER_KEYS,
        *normalize.RESPONSE_MODEL_KEYS,
        *otel_genai.REQUEST_MODEL_KEYS,
        *(key for keys in normalize.TOKEN_KEYS.values() for key in keys),
        *normalize.PROMPT_NAME_KEYS,
        *normalize.PROMPT_VERSION_KEYS,
        *normalize.PROMPT_TEMPLATE_KEYS,
        *normalize.PROMPT_VARIABLES_KEYS,
        *normalize.METADATA_KEYS,
        *normalize.SESSION_ID_KEYS,
        *normalize.USER_ID_KEYS,
        *otel_genai.TTFT_SECONDS_KEYS,
        *openllmetry.STREAMING_KEYS,
        *openinference.INVOCATION_KEYS,
        "gen_ai.operation.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.definitions",
        "gen_ai.tool.name",
        "gen_ai.response.finish_reasons",
        "gen_ai.response.id",
        "gen_ai.output.type",
        "gen_ai.request.max_tokens",
        "gen_ai.openai.request.response_format",
        "error.type",
        "event.name",
        "openinference.span.kind",
        "llm.request.type",
        "llm.finish_reason",
        "llm.top_k",
        "llm.chat.stop_sequences",
        "gen_ai.prompt.0.role",
        "gen_ai.prompt.0.content",
        "gen_ai.prompt.1.content",
        "gen_ai.prompt.9999999.content",
        "gen_ai.completion.0.role",
        "gen_ai.completion.0.content",
        "gen_ai.completion.0.finish_reason",
        "gen_ai.completion.0.tool_calls.0.id",
        "gen_ai.completion.0.tool_calls.0.name",
        "gen_ai.completion.0.tool_calls.0.arguments",
        "llm.input_messages.0.message.role",
        "llm.input_messages.0.message.content",
        "llm.input_messages.x.message.role",
        "llm.input_messages.0.message.contents.0.message_content.type",
        "llm.input_messages.0.message.contents.0.message_content.text",
        "llm.input_messages.0.message.contents.0.message_content.image.image.url",
        "llm.output_messages.0.message.role",
        "llm.output_messages.0.message.content",
        "llm.output_messages.0.message.tool_call_id",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
        "llm.tools.0.tool.json_schema",
        "embedding.embeddings.0.embedding.text",
        "llm.request.functions.0.name",
        "llm.request.functions.0.parameters",
        "traceloop.prompt.template_variables.city",
        "traceloop.entity.input",
    }
)
# Words the conventions give meaning to, as values and as JSON keys.
WORDS = [
    *("role", "content", "parts", "type", "text", "tool_calls", "function", "name", "arguments", "id"),
    *("finish_reason", "message", "index", "refusal", "tool_call_id", "image_url", "url", "input"),
    *("tool_use_id", "thinking", "call_id", "response", "modality", "uri", "tool_call", "tool_use"),
    *("function_call", "tool_result", "input_text", "output_text", "input_image", "json_object", "json_schema"),
    *("user", "assistant", "system", "tool", "chat", "embeddings", "rerank", "invoke_agent", "execute_tool"),
    *("LLM", "EMBEDDING", "CHAIN", "TOOL", "openai", "anthropic", "error", "stop", "true", "False", "1"),
    *("NaN", "inf", "-1", "1e400", " 12 ", "9" * 40, "0x10", "", " ", "<class 'openai.APIError'>"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(WORDS) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
text_values = st.one_of(st.sampled_from(WORDS), st.text(max_size=24), json_values.map(json.dumps))
int64s = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**31, 2**53 + 1]))
uint64s = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, NOW, 2**63 - 1, 2**63, 2**64 - 1]))


def _array(values: list[AnyValue]) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=values))


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs]))


keys = st.one_of(st.sampled_from(ATTRIBUTE_KEYS), st.sampled_from(WORDS), st.text(max_size=12))
any_values = st.recursive(
    st.one_of(
        text_values.map(lambda s: AnyValue(string_value=s)),
        int64s.map(lambda i: AnyValue(int_value=i)),
        st.floats().map(lambda f: AnyValue(double_value=f)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.binary(max_size=16).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    ),
    lambda children: (
        st.lists(children, max_size=4).map(_array) | st.lists(st.tuples(keys, children), max_size=4).map(_kvlist)
    ),
    max_leaves=10,
)
attributes = st.lists(st.tuples(keys, any_values), max_size=8).map(
    lambda pairs: [KeyValue(key=k, value=v) for k, v in pairs]
)
# Ids mostly of the right length (so that spans get through validation), sometimes of any length.
trace_ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))
span_ids = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=12))
names = st.one_of(st.sampled_from(["chat gpt-4o", "openai.response", "embeddings e", "ChatCompletion"]), st.text())
scopes = st.builds(
    InstrumentationScope,
    name=st.sampled_from(["opentelemetry.instrumentation.openai.v1", "openinference.instrumentation", ""]) | st.text(),
    version=st.text(max_size=5),
)
resources = st.builds(Resource, attributes=attributes)

spans = st.builds(
    Span,
    trace_id=trace_ids,
    span_id=span_ids,
    parent_span_id=st.one_of(st.just(b""), span_ids),
    name=names,
    kind=st.integers(-3, 9),
    start_time_unix_nano=uint64s,
    end_time_unix_nano=uint64s,
    attributes=attributes,
    status=st.builds(
        Status, code=st.integers(-3, 5), message=st.sampled_from(["RateLimitError: x", "a.B: c"]) | st.text()
    ),
    events=st.lists(
        st.builds(
            Span.Event,
            time_unix_nano=uint64s,
            name=st.sampled_from(["exception", ""]) | st.text(),
            attributes=attributes,
        ),
        max_size=3,
    ),
    links=st.lists(st.builds(Span.Link, trace_id=trace_ids, span_id=span_ids, attributes=attributes), max_size=2),
    trace_state=st.text(max_size=8),
)
trace_requests = st.builds(
    TRACES.request_type,
    resource_spans=st.lists(
        st.builds(
            ResourceSpans,
            resource=resources,
            scope_spans=st.lists(st.builds(ScopeSpans, scope=scopes, spans=st.lists(spans, max_size=4)), max_size=2),
        ),
        max_size=2,
    ),
)

# GenAI events carry their content in a few attributes: make those common.
event_attributes = st.lists(
    st.tuples(
        st.sampled_from(["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"]) | keys,
        any_values,
    ),
    max_size=6,
).map(lambda pairs: [KeyValue(key=k, value=v) for k, v in pairs])
log_records = st.builds(
    LogRecord,
    time_unix_nano=uint64s,
    observed_time_unix_nano=uint64s,
    severity_number=st.integers(-(2**31), 2**31 - 1),
    severity_text=st.text(max_size=8),
    event_name=st.sampled_from(sorted(GENAI_EVENTS)) | st.text(max_size=12),
    body=any_values,
    attributes=event_attributes,
    trace_id=st.one_of(st.just(b""), trace_ids),
    span_id=st.one_of(st.just(b""), span_ids),
)
log_requests = st.builds(
    LOGS.request_type,
    resource_logs=st.lists(
        st.builds(
            ResourceLogs,
            resource=resources,
            scope_logs=st.lists(
                st.builds(ScopeLogs, scope=scopes, log_records=st.lists(log_records, max_size=4)), max_size=2
            ),
        ),
        max_size=2,
    ),
)

_point_common = {"attributes": attributes, "time_unix_nano": uint64s, "start_time_unix_nano": uint64s}
number_points = st.one_of(
    st.builds(m.NumberDataPoint, as_int=int64s, **_point_common),
    st.builds(m.NumberDataPoint, as_double=st.floats(), **_point_common),
    st.builds(m.NumberDataPoint, **_point_common),
)
histogram_points = st.builds(
    m.HistogramDataPoint,
    count=uint64s,
    sum=st.floats(),
    min=st.floats(),
    max=st.floats(),
    bucket_counts=st.lists(uint64s, max_size=4),
    explicit_bounds=st.lists(st.floats(), max_size=3),
    **_point_common,
)
metric_data = st.one_of(
    st.builds(lambda p: {"gauge": m.Gauge(data_points=p)}, st.lists(number_points, max_size=3)),
    st.builds(
        lambda p, mono, temp: {"sum": m.Sum(data_points=p, is_monotonic=mono, aggregation_temporality=temp)},
        st.lists(number_points, max_size=3),
        st.booleans(),
        st.integers(-1, 4),
    ),
    st.builds(lambda p: {"histogram": m.Histogram(data_points=p)}, st.lists(histogram_points, max_size=3)),
    st.builds(
        lambda p: {"exponential_histogram": m.ExponentialHistogram(data_points=p)},
        st.lists(
            st.builds(m.ExponentialHistogramDataPoint, count=uint64s, sum=st.floats(), **_point_common), max_size=2
        ),
    ),
    st.builds(
        lambda p: {"summary": m.Summary(data_points=p)},
        st.lists(st.builds(m.SummaryDataPoint, count=uint64s, sum=st.floats(), **_point_common), max_size=2),
    ),
    st.just({}),
)
metrics = st.builds(
    lambda name, data, unit: m.Metric(name=name, unit=unit, **data),
    st.sampled_from(["gen_ai.client.token.usage", "gen_ai.client.operation.duration", ""]) | st.text(max_size=8),
    metric_data,
    st.text(max_size=4),
)
metric_requests = st.builds(
    METRICS.request_type,
    resource_metrics=st.lists(
        st.builds(
            m.ResourceMetrics,
            resource=resources,
            scope_metrics=st.lists(
                st.builds(m.ScopeMetrics, scope=scopes, metrics=st.lists(metrics, max_size=3)), max_size=2
            ),
        ),
        max_size=2,
    ),
)
structured = st.one_of(
    trace_requests.map(lambda r: (TRACES, r)),
    log_requests.map(lambda r: (LOGS, r)),
    metric_requests.map(lambda r: (METRICS, r)),
)


@st.composite
def mutated(draw: Callable) -> tuple[Signal, bytes]:
    """A valid request's bytes with a few bytes flipped, set, inserted, deleted or duplicated."""
    signal, payload = draw(st.sampled_from(SEEDS))
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]) | st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 12))]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    # Mostly parsed as its own signal; sometimes as another, which protobuf may well accept.
    as_signal = draw(st.sampled_from([signal, signal, *SIGNALS.values()]))
    return as_signal, bytes(data)


def _any_payload() -> st.SearchStrategy[tuple[Signal, bytes]]:
    return st.one_of(
        mutated(),
        st.tuples(st.sampled_from(list(SIGNALS.values())), st.binary(max_size=300)),
        structured.map(lambda pair: (pair[0], pair[1].SerializeToString())),
    )


# -- the properties -----------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _errors_logged() -> Iterator[list[logging.LogRecord]]:
    """ERROR records logged under `collector.*`: the decoder and normalizer log what they swallow."""
    recorder, logger = _Recorder(), logging.getLogger("collector")
    logger.addHandler(recorder)
    try:
        yield recorder.records
    finally:
        logger.removeHandler(recorder)


def _check_payload(signal: Signal, payload: bytes) -> None:
    try:
        request = signal.request_type.FromString(payload)
    except DecodeError:
        return  # the server answers INVALID_ARGUMENT
    _check_request(signal, request)


def _check_request(signal: Signal, request: Message) -> None:
    total = signal.count(request)
    rejected, reason = signal.validate(request)
    assert 0 <= rejected <= total and bool(rejected) == bool(reason)
    accepted = signal.count(request)
    assert accepted == total - rejected
    # What the WAL stores is what a decode worker (and a replay after a crash) reads back.
    with _errors_logged() as errors:
        tables = signal.decode_serialized(request.SerializeToString(), 0)
    assert not errors, [record.getMessage() for record in errors]
    assert tables[ITEM_TABLE[signal.name]].num_rows == accepted, "every accepted item becomes a row"
    for name, table in tables.items():
        assert table.schema.equals(TABLES[name]), name
        pc.strftime(table[PARTITION_TIME[name]], format="%Y-%m-%d", locale="C")  # what the writer partitions by
        if name == "llm_calls":
            for fields in table["unmapped_fields"].to_pylist():
                assert "normalizer_error" not in (fields or []), "the normalizer raised and fell back"


@PURE
@given(payload=st.binary(max_size=2048), signal=st.sampled_from(list(SIGNALS.values())))
def test_arbitrary_bytes_parse_or_raise_decode_error(payload: bytes, signal: Signal) -> None:
    _check_payload(signal, payload)


@settings(PURE, max_examples=500)
@given(case=mutated())
def test_mutated_requests_parse_or_raise_decode_error(case: tuple[Signal, bytes]) -> None:
    _check_payload(*case)


@STRUCTURED
@given(request=trace_requests)
def test_spans_with_any_attribute_values_decode(request: Message) -> None:
    _check_request(TRACES, request)


@STRUCTURED
@given(request=log_requests)
def test_log_records_with_any_bodies_and_attributes_decode(request: Message) -> None:
    _check_request(LOGS, request)


@STRUCTURED
@given(request=metric_requests)
def test_metric_points_with_any_values_decode(request: Message) -> None:
    _check_request(METRICS, request)


# The same readers, fed decoded values directly: many more shapes per second than through protobuf.
EVENT_KEYS = ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "event.name"]


@PURE
@given(
    attrs=st.dictionaries(st.sampled_from(ATTRIBUTE_KEYS) | st.text(max_size=8), json_values, max_size=12),
    name=names,
    status=st.sampled_from(["unset", "ok", "error"]),
    message=st.sampled_from(["", "RateLimitError: x", "openai.APIError: y"]) | st.text(max_size=8),
    events=st.lists(st.fixed_dictionaries({"name": st.just("exception"), "attributes": json_values}), max_size=2),
)
def test_normalizer_reads_any_attribute_values(attrs, name, status, message, events) -> None:
    facts = normalize.SpanFacts(name, "client", status, message, "scope", events)
    with _errors_logged() as errors:
        row = normalize.normalize_llm_call(attrs, facts)
        fields = normalize.promoted_fields(attrs)
    assert not errors, [record.getMessage() for record in errors]
    if row is not None:
        assert "normalizer_error" not in (row["unmapped_fields"] or [])
        pa.Table.from_pylist([row | fields], TABLES["llm_calls"])


@PURE
@given(
    body=json_values,
    attrs=st.fixed_dictionaries({}, optional=dict.fromkeys(EVENT_KEYS, json_values)),
    order=st.integers(0, 5),
)
def test_genai_events_with_any_content_decode(body, attrs, order) -> None:
    for name in sorted(GENAI_EVENTS):  # each event reads body and attributes its own way
        rows = decode_genai_event(name, body, attrs, order)
        pa.Table.from_pylist([row | {"trace_id": "t", "span_id": "s"} for row in rows], TABLES["llm_messages"])


def test_seeds_are_valid_and_decode_to_rows() -> None:
    """The mutations start from real requests: each parses and yields rows."""
    for signal, payload in SEEDS:
        request = signal.request_type.FromString(payload)
        assert signal.validate(request) == (0, "")
        _check_request(signal, request)
    traces = TRACES.decode(_seed_traces(), NOW)
    assert traces["spans"].num_rows == 4 and traces["llm_calls"].num_rows == 3


# -- the live server ------------------------------------------------------------------------------


def _grpc_code(channel: grpc.Channel, signal: Signal, payload: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(f"/{signal.grpc_service}/Export", request_serializer=None, response_deserializer=None)
    try:
        answer = call(payload, timeout=20)
    except grpc.RpcError as error:
        return error.code()
    signal.response_type.FromString(answer)  # a well-formed Export response
    return grpc.StatusCode.OK


json_any_values = st.recursive(
    st.one_of(
        st.fixed_dictionaries({"stringValue": text_values | st.integers()}),
        st.fixed_dictionaries({"intValue": st.integers().map(str) | st.integers() | st.text(max_size=4)}),
        st.fixed_dictionaries({"doubleValue": st.floats() | st.sampled_from(["NaN", "Infinity", "x"])}),
        st.fixed_dictionaries({"boolValue": st.booleans() | st.text(max_size=3)}),
        st.fixed_dictionaries({"bytesValue": st.text(max_size=8)}),
        st.just({}),
    ),
    lambda children: (
        st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(children, max_size=3)})})
        | st.fixed_dictionaries(
            {
                "kvlistValue": st.fixed_dictionaries(
                    {"values": st.lists(st.fixed_dictionaries({"key": keys, "value": children}), max_size=3)}
                )
            }
        )
    ),
    max_leaves=8,
)
json_attributes = st.lists(st.fixed_dictionaries({"key": keys, "value": json_any_values}), max_size=6)
hex_ids = st.one_of(st.binary(max_size=20).map(bytes.hex), st.text(max_size=34), st.integers(), st.none())
json_times = st.one_of(uint64s.map(str), uint64s, st.integers(), st.text(max_size=5))
json_spans = st.fixed_dictionaries(
    {"traceId": hex_ids, "spanId": hex_ids, "name": names, "attributes": json_attributes},
    optional={
        "parentSpanId": hex_ids,
        "kind": st.integers(-1, 9) | st.sampled_from(["SPAN_KIND_CLIENT", "bogus"]),
        "startTimeUnixNano": json_times,
        "endTimeUnixNano": json_times,
        "status": st.fixed_dictionaries({"code": st.integers(-1, 5) | st.sampled_from(["STATUS_CODE_ERROR", "x"])}),
        "events": st.lists(st.fixed_dictionaries({"name": names, "attributes": json_attributes}), max_size=2),
    },
)
json_logs = st.fixed_dictionaries(
    {"body": json_any_values, "attributes": json_attributes},
    optional={
        "timeUnixNano": json_times,
        "eventName": st.sampled_from(sorted(GENAI_EVENTS)) | st.text(max_size=6),
        "traceId": hex_ids,
        "spanId": hex_ids,
        "severityNumber": st.integers(-5, 30) | st.text(max_size=4),
    },
)
json_points = st.fixed_dictionaries(
    {"attributes": json_attributes},
    optional={
        "timeUnixNano": json_times,
        "asDouble": st.floats() | st.text(max_size=4),
        "asInt": json_times,
        "count": json_times,
        "sum": st.floats(),
        "bucketCounts": st.lists(json_times, max_size=3),
        "explicitBounds": st.lists(st.floats(), max_size=3),
    },
)
json_metrics = st.fixed_dictionaries(
    {"name": st.sampled_from(["gen_ai.client.token.usage", ""]) | st.text(max_size=6)},
    optional={
        "gauge": st.fixed_dictionaries({"dataPoints": st.lists(json_points, max_size=2)}),
        "sum": st.fixed_dictionaries({"dataPoints": st.lists(json_points, max_size=2), "isMonotonic": st.booleans()}),
        "histogram": st.fixed_dictionaries({"dataPoints": st.lists(json_points, max_size=2)}),
    },
)
json_documents = st.one_of(
    st.fixed_dictionaries(
        {
            "resourceSpans": st.lists(
                st.fixed_dictionaries(
                    {
                        "resource": st.fixed_dictionaries({"attributes": json_attributes}),
                        "scopeSpans": st.lists(
                            st.fixed_dictionaries({"spans": st.lists(json_spans, max_size=3)}), max_size=2
                        ),
                    }
                ),
                max_size=2,
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "resourceLogs": st.lists(
                st.fixed_dictionaries(
                    {
                        "scopeLogs": st.lists(
                            st.fixed_dictionaries({"logRecords": st.lists(json_logs, max_size=3)}), max_size=2
                        )
                    }
                ),
                max_size=2,
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "resourceMetrics": st.lists(
                st.fixed_dictionaries(
                    {
                        "scopeMetrics": st.lists(
                            st.fixed_dictionaries({"metrics": st.lists(json_metrics, max_size=3)}), max_size=2
                        )
                    }
                ),
                max_size=2,
            )
        }
    ),
    json_values,
)


@st.composite
def http_cases(draw: Callable) -> tuple[str, str, bytes, bool]:
    """(path, content type, body, gzip) for a POST to the OTLP/HTTP listener."""
    signal = draw(st.sampled_from(list(SIGNALS.values())))
    if draw(st.booleans()):
        content_type = "application/x-protobuf"
        body = draw(_any_payload())[1]
    else:
        content_type = "application/json"
        kind = draw(st.sampled_from(["document", "mutated", "bytes"]))
        if kind == "document":
            body = json.dumps(draw(json_documents)).encode()
        elif kind == "mutated":
            seed_signal, payload = draw(st.sampled_from(SEEDS))
            text = bytearray(encode_json(seed_signal.request_type.FromString(payload)))
            for _ in range(draw(st.integers(1, 4))):
                at = draw(st.integers(0, len(text) - 1))
                text[at : at + draw(st.integers(0, 3))] = draw(st.sampled_from([b"", b"{", b"]", b'"', b"0", b"\xff"]))
            body = bytes(text)
        else:
            body = draw(st.binary(max_size=200))
    return signal.http_path, content_type, body, draw(st.booleans())


def _post(port: int, path: str, content_type: str, body: bytes, compressed: bool) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type}
    if compressed:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def _assert_healthy_and_storing(collector: Collector, channel: grpc.Channel, errors: list[logging.LogRecord]) -> None:
    marker = _seed_traces()
    for span in marker.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b"\xee" * 16
    assert _grpc_code(channel, TRACES, marker.SerializeToString()) == grpc.StatusCode.OK
    # The pipeline works in order: once the marker is stored, everything sent before was handled.
    sql = "SELECT count(*) AS n FROM spans WHERE trace_id = ?"
    rows = wait_for(lambda: query(collector.root, sql, ["ee" * 16]), lambda r: r == [{"n": 4}], timeout_s=30)
    assert rows == [{"n": 4}]
    connection = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert not errors, [record.getMessage() for record in errors]
    assert collector.counters.get("flush_errors") == 0


def test_live_grpc_answers_every_payload_ok_or_invalid_argument(collector: Collector, channel: grpc.Channel) -> None:
    codes: dict[grpc.StatusCode, int] = {}

    @LIVE
    @given(case=_any_payload())
    def export(case: tuple[Signal, bytes]) -> None:
        code = _grpc_code(channel, *case)
        codes[code] = codes.get(code, 0) + 1
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), code

    with _errors_logged() as errors:
        export()
        _assert_healthy_and_storing(collector, channel, errors)
    assert codes.get(grpc.StatusCode.OK) and codes.get(grpc.StatusCode.INVALID_ARGUMENT), codes


def test_live_http_answers_every_body_200_or_400(collector: Collector, channel: grpc.Channel) -> None:
    statuses: dict[int, int] = {}

    @LIVE
    @given(case=http_cases())
    def post(case: tuple[str, str, bytes, bool]) -> None:
        path, content_type, body, compressed = case
        status, answer_type, answer = _post(collector.http_port, path, content_type, body, compressed)
        statuses[status] = statuses.get(status, 0) + 1
        assert status in (200, 400), (status, answer[:300])
        assert answer_type == content_type
        if status == 400:  # a google.rpc.Status saying what was wrong, in the request's encoding
            detail = json.loads(answer) if content_type == "application/json" else status_pb2.Status.FromString(answer)
            assert detail
        elif content_type == "application/json":
            json.loads(answer)

    with _errors_logged() as errors:
        post()
        _assert_healthy_and_storing(collector, channel, errors)
    assert statuses.get(200) and statuses.get(400), statuses
