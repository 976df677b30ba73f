"""Redaction: secrets sent through the real exporters are nowhere on disk; look-alikes survive."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector.redaction import Redactor, rule_names
from collector.redaction_rules import luhn_card
from collector.server import Collector
from store.config import ConfigError, RedactionConfig
from tests.conftest import query, wait_for
from tests.test_auth import secure_config

_PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"
# rule → examples in the formats people paste them in
SECRETS: dict[str, list[str]] = {
    "openai_api_key": [
        "sk-proj-Xq3vB8nR2kLm9PzT4wYc7HdJ6fGs1aQe5uVi0oNb-T3BlbkFJxyz",
        "sk-4f9KzQ2mX8bR1tLp6vNc3wYh7dJs0aEg5uTi9oBnPlk2QwEr",
        "sk-svcacct-Zt8Yq2Lm4Nx6Pb1Vr3Kc5Wd7Fh9Jg0Ta",
    ],
    "anthropic_api_key": ["sk-ant-api03-R2d2C3poL8kJ7hG6fD5sA4qW3eR2tY1uI0oP9lK8jH7gF6dS5aQ4wE3rT2yU1i-AbCdEfAA"],
    "aws_access_key_id": ["AKIA2E3F4G5H6J7K8L9M", "ASIAY34FZKBOKMUTVV7A"],
    "aws_secret_access_key": ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq9T2Lk8Ve", "Hx9Lk2Vb8Nq4Rt6Yz1Wp3Mc5Df7Gh0Js2AeIoUu1"],
    "github_token": [
        "ghp_R8sT2uV4wX6yZ8aB0cD2eF4gH6iJ8kL0mN2o",
        "github_pat_11ABCDEFG0aBcDeFgHiJkL_MnOpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
    ],
    "slack_token": [
        "xoxb-2048-4096-Xa7Bc9De1Fg3Hi5Jk",
        "xoxp-1234567890-0987654321-AbCdEfGhIjKl",
        "xapp-1-A0123BCDEF-1234567890123-abcdef0123456789",
    ],
    "jwt": [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwicm9sZSI6ImFkbWluIn0.7xS0fW9a3kQm1P4vL8nB2cR6tY5uI0oZ"
    ],
    "bearer_token": ["opaqueTok3n_9f8e7d6c5b4a3210ZyXw"],
    "private_key": [f"-----BEGIN RSA PRIVATE KEY-----\n{_PEM_BODY}\n-----END RSA PRIVATE KEY-----"],
    "email": ["jane.doe+billing@example-corp.com", "r.smith@mail.example.co.uk"],
    "payment_card": [
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",
        "4012888888881881",
        "3056 930902 5904",
        "6759649826438453",
    ],
    "phone_number": ["+1 (415) 555-2671", "415-555-2671", "+44 20 7946 0958", "+4915112345678", "1-800-555-0199"],
    "credential_assignment": ["Tr0ub4dor&3horse", "AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA=="],
    "url_credentials": ["pgS3cretPw0rd"],
    "us_ssn": ["078-05-1120"],
}
# How each secret appears in the text sent (some rules need their context).
_WRAP = {
    "aws_secret_access_key": "aws_secret_access_key = {}",
    "bearer_token": "Authorization: Bearer {}",
    "credential_assignment": "password={}",  # the second example carries its own keyword
    "url_credentials": "postgres://app:{}@db.internal:5432/orders",
}
# Look-alikes that must survive: non-Luhn card-length numbers, timestamps, versions, ids, counts.
NEAR_MISSES = [
    "4111111111111112",
    "1234 5678 9012 3456",
    "1733040000000000000",
    "2024-01-15T10:20:30.123Z",
    "v1.2.3-rc.4",
    "gpt-4o-2024-08-06",
    "order 12345678 of 1000000",
    "task-runner-with-a-very-long-name-0123",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "10.0.19041.1",
]


def _wrap(rule: str, secret: str) -> str:
    return secret if "=" in secret else _WRAP.get(rule, "{}").format(secret)


def _texts() -> list[str]:
    return [_wrap(rule, secret) for rule, secrets in SECRETS.items() for secret in secrets]


def _needles() -> list[bytes]:
    """What must not be found on disk: every secret, and the digits of cards and phones."""
    needles = {secret.partition("=")[2] or secret for secrets in SECRETS.values() for secret in secrets}
    for secret in SECRETS["payment_card"] + SECRETS["phone_number"]:
        needles.add("".join(c for c in secret if c.isdigit()))
    needles |= {line for line in _PEM_BODY.split("\n")} | {"hunter2", "YWxhZGRpbjpvcGVuc2VzYW1l"}
    return sorted(n.encode() for n in needles)


@pytest.mark.parametrize("rule", list(SECRETS))
def test_each_rule_redacts_its_examples(rule: str) -> None:
    redactor = Redactor(RedactionConfig())
    for text in [_wrap(rule, secret) for secret in SECRETS[rule]]:
        hits: Counter[str] = Counter()
        redacted = redactor.redact_text(f"note: {text} (end)", hits)
        assert f"[REDACTED:{rule}]" in redacted, (text, redacted)
        assert all(secret not in redacted for secret in SECRETS[rule])
        assert hits[rule] >= 1


def test_near_misses_are_left_alone() -> None:
    assert not luhn_card("4111111111111112") and not luhn_card("1234567890123456")
    redactor = Redactor(RedactionConfig())
    hits: Counter[str] = Counter()
    for text in NEAR_MISSES + ['{"max_tokens": 1024, "input_tokens": 20}', "the token limit: 4096"]:
        assert redactor.redact_text(text, hits) == text
    assert not hits


def test_rules_can_be_switched_off_and_added() -> None:
    redactor = Redactor(RedactionConfig(disabled_rules=("email",), custom_rules=("employee_id=EMP-[0-9]{6}",)))
    hits: Counter[str] = Counter()
    assert redactor.redact_text("jane@example.com is EMP-123456", hits) == "jane@example.com is [REDACTED:employee_id]"
    with pytest.raises(ConfigError, match="unknown rule"):
        Redactor(RedactionConfig(disabled_rules=("emails",)))
    with pytest.raises(ConfigError, match="invalid regex"):
        Redactor(RedactionConfig(custom_rules=("bad=([",)))
    assert "email" in rule_names() and "sensitive_attribute" in rule_names()


def _send_everything(collector: Collector) -> None:
    texts = _texts()
    blob = " | ".join(texts)
    resource = Resource.create({"service.name": "leaky-agent", "deploy.owner": SECRETS["email"][1]})
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": t}]} for t in texts])
    for exporter in (
        OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True),
        HttpSpanExporter(endpoint=f"http://127.0.0.1:{collector.http_port}/v1/traces"),
    ):
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("leaky")
        with tracer.start_as_current_span(f"task for {SECRETS['email'][0]}") as span:
            span.set_attributes({f"note.{i}": text for i, text in enumerate(texts)})
            span.set_attributes({f"gen_ai.prompt.{i}.content": t for i, t in enumerate(texts)})
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.input.messages": messages,
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": blob}]),
                    "all.notes": texts,
                    "db.password": "hunter2",
                    "http.request.header.authorization": ["Basic YWxhZGRpbjpvcGVuc2VzYW1l"],
                    "near.misses": NEAR_MISSES,
                }
            )
            span.add_event("gen_ai.user.message", {"content": blob, "user.phone": SECRETS["phone_number"][0]})
            span.set_status(Status(StatusCode.ERROR, f"provider said 401 for {SECRETS['openai_api_key'][0]}"))
        provider.shutdown()
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(f"http://127.0.0.1:{collector.http_port}/v1/logs"))
    )
    logger = logs.get_logger("leaky")
    logger.emit(LogRecord(body=blob, attributes={"near": NEAR_MISSES[0]}))
    logger.emit(
        LogRecord(
            body={"content": texts, "nested": {"key": SECRETS["private_key"][0]}}, event_name="gen_ai.user.message"
        )
    )
    logs.shutdown()
    # The OTLP/JSON path too, with the strings JSON-escaped the way other SDKs write them.
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json span",
                                "startTimeUnixNano": "1733040000000000000",
                                "endTimeUnixNano": "1733040001000000000",
                                "attributes": [{"key": "note", "value": {"stringValue": blob}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{collector.http_port}/v1/traces",
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _every_byte_on_disk(root: Path) -> dict[Path, bytes]:
    """Each file's raw bytes, and for Parquet also every value it holds, as text (decompressed)."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data += json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False).encode()
        found[path] = data
    return found


def _assert_clean(root: Path) -> None:
    needles = _needles()
    files = _every_byte_on_disk(root)
    assert any(p.suffix == ".wal" for p in files) and any(p.suffix == ".parquet" for p in files)
    leaks = [(str(path.relative_to(root)), n.decode()) for path, data in files.items() for n in needles if n in data]
    assert leaks == []


def test_no_secret_sent_through_real_exporters_reaches_the_disk(tmp_path: Path) -> None:
    config = secure_config(tmp_path / "data", auth={"enabled": False})
    data_dir = Path(config.store.data_dir)
    with Collector(config) as collector:
        _send_everything(collector)
        wait_for(lambda: query(data_dir, "SELECT count(*) AS n FROM spans"), lambda r: r[0]["n"] == 3)
        wait_for(lambda: query(data_dir, "SELECT count(*) AS n FROM logs"), lambda r: r[0]["n"] == 2)
        _assert_clean(data_dir)  # WAL segments still there, Parquet written
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/metrics", timeout=5).read().decode()
    _assert_clean(data_dir)  # after shutdown too
    counts = dict(line.split() for line in metrics.splitlines() if line.startswith("vigil_redacted_"))
    assert all(float(counts[f"vigil_redacted_{rule}_total"]) > 0 for rule in [*SECRETS, "sensitive_attribute"]), counts
    assert float(counts["vigil_redacted_iban_total"]) == 0, "every rule in force is listed, hits or not"

    spans = query(data_dir, "SELECT name, attributes, events, status_message FROM spans ORDER BY name")
    attributes = json.loads(spans[-1]["attributes"])
    assert attributes["near.misses"] == NEAR_MISSES, "look-alikes must survive"
    assert attributes["db.password"] == "[REDACTED:sensitive_attribute]"
    assert attributes["http.request.header.authorization"] == ["[REDACTED:sensitive_attribute]"]
    assert attributes["note.0"] == "[REDACTED:openai_api_key]"
    assert spans[-1]["name"] == "task for [REDACTED:email]"
    assert "[REDACTED:openai_api_key]" in spans[-1]["status_message"]
    calls = query(data_dir, "SELECT input_messages FROM llm_calls")
    assert len(calls) == 2 and all("[REDACTED:private_key]" in c["input_messages"] for c in calls)
    logs = query(data_dir, "SELECT body, attributes FROM logs")
    assert any(json.loads(row["attributes"] or "{}").get("near") == NEAR_MISSES[0] for row in logs)


def test_redaction_can_be_turned_off(tmp_path: Path) -> None:
    config = secure_config(tmp_path / "data", auth={"enabled": False})
    config = type(config)(**{**config.__dict__, "redaction": RedactionConfig(enabled=False)})
    with Collector(config) as collector:
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("s", attributes={"mail": SECRETS["email"][0]}):
            pass
        provider.shutdown()
        rows = wait_for(lambda: query(config.store.data_dir, "SELECT attributes FROM spans"), lambda r: len(r) == 1)
    assert json.loads(rows[0]["attributes"])["mail"] == SECRETS["email"][0]


def test_a_clean_llm_request_costs_only_the_pre_check() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from collector.attributes import encode_attributes

    attributes = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Capital of France?"}]}]',
        "gen_ai.response.id": "chatcmpl-9f8e7d6c5b4a",
        "http.url": "https://api.openai.com/v1/chat/completions",
    }
    span = Span(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat gpt-4o-mini", attributes=encode_attributes(attributes)
    )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span] * 50)])])
    assert not Redactor(RedactionConfig()).may_match(request.SerializeToString())


def test_walking_only_the_dirty_spans_redacts_exactly_what_a_full_walk_does() -> None:
    import random

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    from collector.attributes import encode_attributes

    rng = random.Random(7)
    texts = _texts() + NEAR_MISSES + ["plain words " * 60, "x" * 700]
    spans = []
    for i in range(300):
        attributes = {f"a{j}": rng.choice(texts) for j in range(rng.randint(0, 4))}
        attributes["nested"] = {"list": [rng.choice(texts), {"deep": rng.choice(texts)}], "n": i}
        events = [Span.Event(name=rng.choice(texts)[:40], attributes=encode_attributes({"e": rng.choice(texts)}))]
        spans.append(
            Span(
                trace_id=rng.randbytes(16),
                span_id=rng.randbytes(8),
                name=rng.choice(texts)[:60],
                attributes=encode_attributes(attributes),
                events=events,
            )
        )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    payload = request.SerializeToString()
    redactor = Redactor(RedactionConfig())
    by_hits, full = ExportTraceServiceRequest.FromString(payload), ExportTraceServiceRequest.FromString(payload)
    hits, all_hits = redactor.redact_request(by_hits, payload), Counter()
    redactor._walk(full, all_hits)
    assert by_hits == full and hits == all_hits and sum(hits.values()) > 100
    assert not any(needle in by_hits.SerializeToString() for needle in _needles())
