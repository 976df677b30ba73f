"""The compiled trace reader (`collector._otlp_wire`) against the protobuf runtime's parse.

A decode worker reads each logged trace request straight from its bytes with the compiled reader;
`collector.decode_traces.read_request` walks the protobuf runtime's parse into the same values.
Held to: for every request the protobuf runtime accepts, the same values, compared by `repr` (so
True is not 1, -0.0 is not 0.0, and NaN equals NaN); for any bytes at all, values or DecodeError,
never a crash. The reader may accept more than the runtime (it skips fields it does not read, such
as schema_url, without checking their UTF-8): the Export handler has parsed every request with the
runtime before it is logged. Without the compiled reader (no C compiler at install) the same rows
come out of the protobuf runtime's parse, and the collector says so.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from bench.ingest import build_request
from collector import _otlp_wire
from collector.decode_traces import read_request
from collector.signals import TRACES
from tests.conftest import RECORDINGS, can_compile
from tests.otlp_json import load_recording
from tests.test_fuzz import PURE, STRUCTURED, mutated, trace_requests

BUILT = pytest.mark.skipif(_otlp_wire is None, reason="collector._otlp_wire is not built (see test_reader_is_built)")


def test_reader_is_built() -> None:
    # The install compiles it (setup.py); without it ingest silently costs ~15% more CPU per span.
    if not can_compile():
        pytest.skip("no C compiler or Python headers here: the collector runs on the protobuf runtime's parse")
    assert _otlp_wire is not None, "collector._otlp_wire not compiled: install gcc, `uv sync --reinstall-package vigil`"


def _same_as_runtime(payload: bytes) -> None:
    try:
        expected = read_request(TRACES.request_type.FromString(payload))
    except DecodeError:
        with contextlib.suppress(_otlp_wire.DecodeError):  # may accept (see the module doc), must not crash
            _otlp_wire.read_trace_request(payload)
        return
    assert repr(_otlp_wire.read_trace_request(payload)) == repr(expected)


@BUILT
@pytest.mark.parametrize("path", sorted(RECORDINGS.glob("*.jsonl")), ids=lambda p: p.stem)
def test_recordings_read_the_same(path) -> None:
    requests = [request for signal, request in load_recording(path) if signal == "traces"]
    assert requests
    for request in requests:
        _same_as_runtime(request.SerializeToString())


@BUILT
@pytest.mark.parametrize("content_bytes", [1024, 10240])
def test_benchmark_requests_read_the_same(content_bytes: int) -> None:
    payload, calls = build_request(7, 64, content_bytes)
    assert calls
    _same_as_runtime(payload)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field as it goes on the wire."""
    out, length = bytearray([number << 3 | 2]), len(data)
    while length > 0x7F:
        out.append(length & 0x7F | 0x80)
        length >>= 7
    return bytes(out) + bytes([length]) + data


@BUILT
def test_merges_and_last_values_follow_protobuf() -> None:
    """A span sent in two parts: the last value of a singular field wins, repeated fields add up (a
    later key wins), an unset value is None, unknown fields and groups are skipped."""
    first = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="a", kind=Span.SPAN_KIND_CLIENT)
    first.attributes.add(key="k", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])))
    first.attributes.add(key="none")
    second = Span(name="b", status=Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    second.attributes.add(key="k", value=AnyValue(string_value="later wins"))
    second.attributes.add(key="kv", value=AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="x")])))
    second.attributes.add(key="strindex", value=AnyValue(string_value_strindex=3))  # profiles only: no value
    unknown = b"\xf8\x07\x05" + b"\xa3\x07\x08\x01\xa4\x07"  # a varint field 127, a group 116
    span = first.SerializeToString() + unknown + second.SerializeToString()
    payload = _field(1, _field(2, _field(2, span)))  # request → resource_spans → scope_spans → spans
    _same_as_runtime(payload)
    [(_, [(_, _, [read])])] = _otlp_wire.read_trace_request(payload)
    assert read[4] == "b" and read[5] == Span.SPAN_KIND_CLIENT and read[11:] == (2, "boom")
    assert read[8] == {"k": "later wins", "none": None, "kv": {"x": None}, "strindex": None}


@BUILT
@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a\x05\x12\x03",  # a length past the end
        b"\x0a\x02\x12\xff",  # a truncated varint
        b"\x0a\x01\x0c",  # an end of group with no group
        b"\x0f",  # wire type 7
        b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # a varint of 11 bytes
        b"\x0a\x07\x12\x05\x12\x03\x2a\x01\xff",  # a span name that is not UTF-8
    ],
)
def test_malformed_requests_raise_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        TRACES.request_type.FromString(payload)
    with pytest.raises(_otlp_wire.DecodeError, match="malformed ExportTraceServiceRequest"):
        _otlp_wire.read_trace_request(payload)
    assert issubclass(_otlp_wire.DecodeError, ValueError)


@BUILT
def test_deep_nesting_is_refused_not_a_crash() -> None:
    value = b"\x18\x01"  # AnyValue(int_value=1)
    for _ in range(250):
        value = _field(5, _field(1, value))  # AnyValue(array_value=ArrayValue(values=[value]))
    key_value = _field(1, b"deep") + _field(2, value)
    ids = _field(1, b"\x01" * 16) + _field(2, b"\x02" * 8)
    payload = _field(1, _field(2, _field(2, ids + _field(9, key_value))))
    with pytest.raises(DecodeError):
        TRACES.request_type.FromString(payload)  # the runtime stops at 100 levels
    with pytest.raises(_otlp_wire.DecodeError, match="nested too deep"):
        _otlp_wire.read_trace_request(payload)


@BUILT
@STRUCTURED
@given(request=trace_requests)
def test_any_structured_request_reads_the_same(request) -> None:
    _same_as_runtime(request.SerializeToString())


@BUILT
@settings(PURE, max_examples=500)
@given(case=mutated())
def test_mutated_bytes_read_the_same_or_raise(case) -> None:
    _same_as_runtime(case[1])


@BUILT
@PURE
@given(payload=st.binary(max_size=512))
def test_arbitrary_bytes_read_or_raise(payload: bytes) -> None:
    _same_as_runtime(payload)


_WITHOUT_READER = """
import json, sys
sys.modules["collector._otlp_wire"] = None  # as if installed without a C compiler
from collector.signals import TRACES
tables = TRACES.decode_serialized(sys.stdin.buffer.read(), 1)
print(json.dumps({name: table.to_pylist() for name, table in tables.items()}, default=str))
"""


@BUILT
def test_without_the_reader_the_same_rows_come_out_and_it_says_so() -> None:
    payload, _ = build_request(7, 64, 1024)
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_READER], input=payload, capture_output=True, timeout=120, check=True
    )
    assert b"collector._otlp_wire is not built" in done.stderr and b"apt-get install gcc" in done.stderr
    tables = TRACES.decode_serialized(payload, 1)
    expected = json.loads(json.dumps({name: table.to_pylist() for name, table in tables.items()}, default=str))
    assert json.loads(done.stdout) == expected
