"""ExportLogsServiceRequest → Arrow tables for `logs` and `llm_messages`.

Comes in: a parsed OTLP logs request. Goes out: every record as a `logs` row, and the messages
of GenAI events (see `collector.genai_events`) as `llm_messages` rows. Pure, no I/O.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from collector.attributes import decode_attributes, decode_uint64, decode_value, resource_columns
from collector.conventions import dumps
from collector.genai_events import GENAI_EVENTS, decode_genai_event
from store.outcomes import VerdictError, verdict_row
from store.schema import LLM_MESSAGES_SCHEMA, LOGS_SCHEMA, OUTCOMES_SCHEMA, content_id

# Log events that carry a task verdict: vigil's own, and the OTel GenAI evaluation event
# (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/#event-gen_aievaluationresult).
OUTCOME_EVENT = "vigil.outcome"
EVALUATION_EVENT = "gen_ai.evaluation.result"


def count_logs(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def validate_logs(request: ExportLogsServiceRequest) -> tuple[int, str]:
    """Drop records whose ids cannot be right (ids are optional on logs, but never half there)."""
    rejected = 0
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            keep = [record for record in scope_logs.log_records if _ids_ok(record)]
            if len(keep) != len(scope_logs.log_records):
                rejected += len(scope_logs.log_records) - len(keep)
                del scope_logs.log_records[:]
                scope_logs.log_records.extend(keep)
    return rejected, "trace_id must be empty or 16 bytes, span_id empty or 8 bytes" if rejected else ""


def _ids_ok(record: LogRecord) -> bool:
    return len(record.trace_id) in (0, 16) and len(record.span_id) in (0, 8)


def decode_logs(request: ExportLogsServiceRequest, received_at_ns: int) -> dict[str, pa.Table]:
    logs: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    order = 0
    for resource_logs in request.resource_logs:
        common = resource_columns(resource_logs.resource, received_at_ns)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                if not _ids_ok(record):
                    continue
                attrs = decode_attributes(record.attributes)
                body = decode_value(record.body)
                # Before LogRecord.event_name existed, SDKs sent the name as an attribute.
                event_name = record.event_name or _str(attrs.get("event.name")) or None
                # Times past int64 nanoseconds count as missing (see decode_uint64).
                observed_ns = decode_uint64(record.observed_time_unix_nano)
                time_ns = decode_uint64(record.time_unix_nano) or observed_ns or received_at_ns
                ids = {"trace_id": record.trace_id.hex() or None, "span_id": record.span_id.hex() or None}
                row = ids | {
                    "time": time_ns,
                    "observed_time": observed_ns or None,
                    "severity_number": record.severity_number or None,
                    "severity_text": record.severity_text or None,
                    "event_name": event_name,
                    "body": dumps(body),
                    "attributes": dumps(attrs),
                    "scope_name": scope_logs.scope.name,
                }
                row["record_id"] = content_id(*row.values(), common["resource_attributes"])
                logs.append(common | row)
                if event_name in GENAI_EVENTS and ids["span_id"]:
                    for row in decode_genai_event(event_name, body, attrs, order):
                        messages.append(row | ids | {"time": time_ns, "received_at": received_at_ns})
                if event_name in (OUTCOME_EVENT, EVALUATION_EVENT) and ids["trace_id"]:
                    verdict = _verdict(event_name, ids["trace_id"], attrs, body, time_ns, common["project"])
                    if verdict is not None:
                        verdicts.append(verdict)
                order += 1
    return {
        "logs": pa.Table.from_pylist(logs, LOGS_SCHEMA),
        "llm_messages": pa.Table.from_pylist(messages, LLM_MESSAGES_SCHEMA),
        "outcomes": pa.Table.from_pylist(verdicts, OUTCOMES_SCHEMA),
    }


def _verdict(
    name: str, trace_id: str, attrs: dict[str, Any], body: Any, time_ns: int, project: str | None
) -> dict[str, Any] | None:
    """A verdict row from an outcome event; an unusable one stays a plain log record."""
    fields = body if isinstance(body, dict) else {}
    if name == OUTCOME_EVENT:
        label = attrs.get("vigil.outcome", fields.get("outcome"))
        score = attrs.get("vigil.outcome.score", fields.get("score"))
        comment = attrs.get("vigil.outcome.comment", fields.get("comment"))
        source = f"otlp:{attrs.get('vigil.outcome.source', fields.get('source', 'event'))}"
    else:
        label = attrs.get("gen_ai.evaluation.score.label")
        score = attrs.get("gen_ai.evaluation.score.value")
        comment = attrs.get("gen_ai.evaluation.explanation")
        source = f"otlp:{attrs.get('gen_ai.evaluation.name', 'evaluation')}"
    try:
        return verdict_row(trace_id, str(label or ""), score, comment, source, time_ns, project)
    except VerdictError:
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
