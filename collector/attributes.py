"""OTLP AnyValue / KeyValue → plain Python values.

Comes in: protobuf `AnyValue` and repeated `KeyValue` messages. Goes out: str, int, float,
bool, bytes (as lowercase hex), list and dict, ready for `json.dumps`. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

_INT64_MAX = 2**63 - 1


def decode_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [decode_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    # string_value_strindex points into a profiles string table, which no trace, log or metric has;
    # a kind a later OTLP adds is as unreadable. Either way the value is missing, not the request:
    # raising here quarantined every span sent with it.
    return None


def decode_uint64(value: int) -> int | None:
    """An OTLP fixed64 (a time in ns, a count) for an int64 column: None past int64's range.

    Fix: such values (times after 2262, absurd counts) made `pa.Table.from_pylist` raise
    OverflowError, so the pipeline dropped every row of an already acknowledged request.
    """
    return value if value <= _INT64_MAX else None


def decode_attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    """Later duplicates win, as the OTel SDK's own attribute handling does."""
    return {kv.key: decode_value(kv.value) for kv in key_values}


def encode_value(value: Any) -> AnyValue:
    """The mirror of `decode_value`, for senders built on this code (benchmarks, demo agent, tests)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[encode_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=encode_attributes(value)))
    return AnyValue(string_value=str(value))


def encode_attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=encode_value(value)) for key, value in values.items()]


def resource_columns(resource: Resource | dict[str, Any], received_at_ns: int) -> dict[str, Any]:
    """The columns every table takes from a request's resource (or its decoded attributes):
    service, project, its attributes."""
    from collector.conventions import dumps  # conventions builds on this module

    attrs = resource if isinstance(resource, dict) else decode_attributes(resource.attributes)
    service, project = attrs.get("service.name"), attrs.get("vigil.project")
    return {
        "service_name": None if service is None else str(service),
        "project": None if project is None else str(project),
        "resource_attributes": dumps(attrs),
        "received_at": received_at_ns,
    }
