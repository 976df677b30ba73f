"""Recorded OTLP/JSON export requests → protobuf messages, for tests that replay them.

Comes in: a recording, one export request a line: `{"signal": traces|logs|metrics,
"received_at": <unix seconds>, "request": <OTLP/JSON>}`. Its trace and span ids are hex, as the
OTLP/JSON spec writes them, while protobuf's `json_format` expects base64 for bytes fields, so
the ids are converted before `ParseDict`. Goes out: `ExportTraceServiceRequest`,
`ExportLogsServiceRequest` or `ExportMetricsServiceRequest`, in file order. No network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.otlp_json import hex_ids_to_base64

REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}


def load_recording(path: Path | str) -> list[tuple[str, Message]]:
    """[(signal, request), ...] for every line of the recording at `path`."""
    return [(signal, request) for signal, _, request in iter_recording(path)]


def iter_recording(path: Path | str) -> Iterator[tuple[str, float, Message]]:
    """(signal, received_at, request) per line, for tests that also need the arrival time."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            signal = record["signal"]
            if signal not in REQUEST_TYPES:
                raise ValueError(f"{path}:{number}: unknown signal {signal!r}")
            request = ParseDict(hex_ids_to_base64(record["request"]), REQUEST_TYPES[signal]())
            yield signal, float(record.get("received_at", 0.0)), request
