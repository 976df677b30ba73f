"""ExportMetricsServiceRequest → an Arrow table for `metrics`, one row per data point.

Comes in: a parsed OTLP metrics request. Goes out: rows for `store.schema.METRICS_SCHEMA`.
Gauges and sums fill `value`; histograms and summaries fill `count`/`sum` (and buckets), so the
GenAI metrics (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`) can be set beside
the spans' token counts. Exponential histogram buckets are not expanded (count/sum/min/max are
kept). Pure, no I/O.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from collector.attributes import decode_attributes, decode_uint64, resource_columns
from collector.conventions import dumps
from store.schema import METRICS_SCHEMA, content_id

_TEMPORALITY = {
    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "delta",
    AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
}


def count_points(request: ExportMetricsServiceRequest) -> int:
    return sum(len(_points(metric)[1]) for metric in _metrics(request))


def validate_metrics(request: ExportMetricsServiceRequest) -> tuple[int, str]:
    """Drop metrics without a name: nothing could ever query them."""
    rejected = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            keep = [metric for metric in scope_metrics.metrics if metric.name]
            if len(keep) != len(scope_metrics.metrics):
                rejected += sum(len(_points(m)[1]) for m in scope_metrics.metrics if not m.name)
                del scope_metrics.metrics[:]
                scope_metrics.metrics.extend(keep)
    return rejected, "metric name must not be empty" if rejected else ""


def decode_metrics(request: ExportMetricsServiceRequest, received_at_ns: int) -> dict[str, pa.Table]:
    rows: list[dict[str, Any]] = []
    for resource_metrics in request.resource_metrics:
        common = resource_columns(resource_metrics.resource, received_at_ns)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name:
                    continue
                kind, points = _points(metric)
                data = getattr(metric, kind) if kind else None
                described = common | {
                    "name": metric.name,
                    "description": metric.description or None,
                    "unit": metric.unit or None,
                    "type": kind,
                    "temporality": _TEMPORALITY.get(getattr(data, "aggregation_temporality", 0)),
                    "is_monotonic": data.is_monotonic if kind == "sum" else None,
                    "scope_name": scope_metrics.scope.name,
                }
                for point in points:
                    row = described | _point(kind, point)
                    identity = (row["name"], row["resource_attributes"], row["scope_name"], row["attributes"])
                    row["record_id"] = content_id(*identity, row["time"], row["start_time"])
                    rows.append(row)
    return {"metrics": pa.Table.from_pylist(rows, METRICS_SCHEMA)}


def _metrics(request: ExportMetricsServiceRequest):
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            yield from scope_metrics.metrics


def _points(metric: Metric) -> tuple[str | None, Any]:
    kind = metric.WhichOneof("data")
    return kind, getattr(metric, kind).data_points if kind else ()


def _point(kind: str | None, point: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        # fixed64 fields past int64's range become None (see decode_uint64).
        "time": decode_uint64(point.time_unix_nano),
        "start_time": decode_uint64(point.start_time_unix_nano) or None,
        "attributes": dumps(decode_attributes(point.attributes)),
    }
    if kind in ("gauge", "sum"):
        field = point.WhichOneof("value")
        row["value"] = float(getattr(point, field)) if field else None
        return row
    row["count"] = decode_uint64(point.count)
    row["sum"] = point.sum if kind == "summary" or point.HasField("sum") else None
    if kind in ("histogram", "exponential_histogram"):
        row["min"] = point.min if point.HasField("min") else None
        row["max"] = point.max if point.HasField("max") else None
    if kind == "histogram":
        row["bucket_counts"] = [decode_uint64(count) for count in point.bucket_counts]
        row["explicit_bounds"] = list(point.explicit_bounds)
    return row


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
