"""Resource limits: a full disk and an overloaded write path get the answers OTLP exporters retry.

A full disk (a small tmpfs as the data dir, most of it taken by a ballast file) is refused with
UNAVAILABLE + RetryInfo over gRPC and 503 + Retry-After over HTTP, and /readyz says 503; nothing
acknowledged is lost or stored twice, no half-written file becomes visible, and ingestion resumes
by itself when space returns. A Parquet flush that fails for lack of space keeps its rows in
memory and in the write-ahead log until it succeeds. A write path that has fallen behind answers
RESOURCE_EXHAUSTED + RetryInfo / 429 + Retry-After, and takes the retries once it catches up.

The tmpfs needs root (CAP_SYS_ADMIN); elsewhere the disk tests are skipped and say why.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.server import Collector
from tests.conftest import make_config, query, wait_for

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
NOW = 1_790_000_000_000_000_000
DISK_MIB = 8

SpanKey = tuple[str, str]
# A log record's header, as collector/wal.py documents it: [seq u64][length u32][crc32 u32][kind u8].
_WAL_HEADER = struct.Struct("<QIIB")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh DISK_MIB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("no `mount` command: the full-disk tests need a small tmpfs")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def _span_request(number: int, blob_bytes: int = 0) -> tuple[ExportTraceServiceRequest, SpanKey]:
    """One LLM span; `blob_bytes` of random data (hex, so it does not compress away) make it large."""
    trace_id = number.to_bytes(8, "big") + os.urandom(8)
    span_id = number.to_bytes(8, "big")
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 2,
    }
    if blob_bytes:
        attrs["blob"] = os.urandom(blob_bytes // 2).hex()
    span = Span(
        trace_id=trace_id,
        span_id=span_id,
        name="chat gpt-4o",
        start_time_unix_nano=NOW,
        end_time_unix_nano=NOW + 1_000_000,
        attributes=[
            KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
            for k, v in attrs.items()
        ],
    )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    return request, (trace_id.hex(), span_id.hex())


def _grpc_export(channel: grpc.Channel, request: ExportTraceServiceRequest) -> grpc.RpcError | None:
    """None when acknowledged, else the error (with its status details)."""
    call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    try:
        answer = call(request.SerializeToString(), timeout=30)
    except grpc.RpcError as error:
        return error
    assert ExportTraceServiceResponse.FromString(answer) == ExportTraceServiceResponse()
    return None


def _assert_retry_info(error: grpc.RpcError | None, code: grpc.StatusCode) -> None:
    assert error is not None and error.code() == code, error
    status = rpc_status.from_call(error)
    retry = error_details_pb2.RetryInfo()
    assert status is not None and status.details and status.details[0].Unpack(retry), "no RetryInfo"
    assert retry.retry_delay.seconds >= 1


def _http(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _fill(path: Path) -> None:
    """Write `path` until the file system says it is full (bounded by the disk's size)."""
    with open(path, "ab", buffering=0) as ballast:
        for chunk in (1 << 16, 4096):
            for _ in range((DISK_MIB << 20) // chunk + 1):
                try:
                    ballast.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break


def _stored(root: Path, view: str = "spans") -> dict[SpanKey, int]:
    rows = query(root, f"SELECT trace_id, span_id, count(*) AS n FROM {view} GROUP BY ALL")
    return {(row["trace_id"], row["span_id"]): row["n"] for row in rows}


def _assert_stored_once(root: Path, acked: set[SpanKey]) -> None:
    for view in ("spans", "llm_calls"):
        stored = _stored(root, view)
        assert acked <= stored.keys(), f"{len(acked - stored.keys())} acknowledged spans missing from {view}"
        assert set(stored.values()) <= {1}, f"{view} holds a span twice"


def _assert_parquet_readable(root: Path) -> int:
    """Every file a query can see is a complete Parquet file; returns how many there are."""
    files = sorted(root.glob("*/date=*/*.parquet"))
    with duckdb.connect() as con:
        for path in files:
            con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchall()
    return len(files)


def test_full_disk_is_refused_unavailable_then_ingestion_resumes(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(os.urandom(5 << 20))  # leaves about 3 MiB for the store
    root = small_disk / "data"
    config = make_config(root, flush_interval_s=0.2)
    acked: set[SpanKey] = set()
    number = 0

    def big() -> tuple[ExportTraceServiceRequest, SpanKey]:
        nonlocal number
        number += 1
        return _span_request(number, blob_bytes=300_000)

    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        url = f"http://127.0.0.1:{collector.http_port}"
        refusal = None
        for _ in range(4 * DISK_MIB):  # 3 MiB of room takes about ten of these; give up well after
            request, key = big()
            refusal = _grpc_export(channel, request)
            if refusal is not None:
                break
            acked.add(key)
        assert acked, "the store took nothing before it was full"
        _assert_retry_info(refusal, grpc.StatusCode.UNAVAILABLE)

        # While full, attempts are refused the same way on both transports, and nothing crashes. A
        # Parquet flush that fails deletes its temporary file, which can free room for a request or two:
        # those are acknowledged, and must be stored like the rest, so attempts go on until each
        # transport has been refused twice.
        refused = {"grpc": 0, "http": 0}
        for _ in range(40):
            if refused["grpc"] < 2:
                request, key = big()
                error = _grpc_export(channel, request)
                if error is None:
                    acked.add(key)
                else:
                    _assert_retry_info(error, grpc.StatusCode.UNAVAILABLE)
                    refused["grpc"] += 1
            if refused["http"] < 2:
                request, key = big()
                status, headers, body = _http(f"{url}/v1/traces", request.SerializeToString())
                if status == 200:
                    acked.add(key)
                else:
                    assert status == 503 and int(headers["Retry-After"]) >= 1
                    assert status_pb2.Status.FromString(body).code == code_pb2.UNAVAILABLE
                    refused["http"] += 1
            if refused == {"grpc": 2, "http": 2}:
                break
        assert refused == {"grpc": 2, "http": 2}, refused
        # /readyz probes with a write, which the room a failed flush frees for a moment can let through.
        assert wait_for(lambda: _http(f"{url}/readyz")[0], lambda status: status == 503, timeout_s=10) == 503
        assert _http(f"{url}/healthz")[0] == 200
        assert collector.counters.get("refused_requests") >= 5

        ballast.unlink()  # space returns
        for _ in range(3):
            request, key = big()
            assert _grpc_export(channel, request) is None, "ingestion did not resume once there was space"
            acked.add(key)
        request, key = big()
        assert _http(f"{url}/v1/traces", request.SerializeToString())[0] == 200
        acked.add(key)
        assert _http(f"{url}/readyz")[0] == 200

        # Rows whose flush failed while the disk was full are written now, from memory.
        stored = wait_for(lambda: _stored(root), lambda s: acked <= s.keys(), timeout_s=30)
        assert acked <= stored.keys()
        print(f"acked={len(acked)} flush_errors={collector.counters.get('flush_errors'):g}")
    _assert_stored_once(root, acked)
    assert _stored(root).keys() == acked, "a refused request left rows behind"
    files = _assert_parquet_readable(root)

    # A restart finds a consistent store: nothing to repair, nothing lost, nothing doubled.
    with Collector(config) as collector:
        assert collector.wal.checkpoint_seq >= 1
    _assert_stored_once(root, acked)
    assert _assert_parquet_readable(root) == files


def _wal_records(root: Path) -> list[int]:
    """Sequence numbers in the log segments, asserting each ends on a record boundary (no torn record)."""
    seqs = []
    for segment in sorted((root / "wal").glob("*.wal")):
        data, offset = segment.read_bytes(), 0
        while offset < len(data):
            seq, length, crc, kind = _WAL_HEADER.unpack_from(data, offset)
            payload = data[offset + _WAL_HEADER.size : offset + _WAL_HEADER.size + length]
            assert len(payload) == length and zlib.crc32(payload, kind) == crc, f"torn record in {segment.name}"
            seqs.append(seq)
            offset += _WAL_HEADER.size + length
    return seqs


def test_parquet_flush_without_space_keeps_rows_in_memory_and_wal(small_disk: Path) -> None:
    root = small_disk / "data"
    config = make_config(root, flush_interval_s=0.2)
    # About 0.9 KB each, so three fit in the first 4 KiB page of the log segment, and the fourth
    # (2 KB) does not fit in what is left of it.
    requests = [_span_request(n, blob_bytes=700) for n in range(1, 4)]
    too_big = _span_request(4, blob_bytes=2000)[0]
    acked: set[SpanKey] = set()
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        url = f"http://127.0.0.1:{collector.http_port}"
        assert _grpc_export(channel, requests[0][0]) is None
        acked.add(requests[0][1])
        wait_for(lambda: _stored(root), lambda s: acked <= s.keys())
        checkpoint = wait_for(lambda: collector.wal.checkpoint_seq, lambda seq: seq == 1)
        assert checkpoint == 1

        # Full, except for the room left in the log segment's last page: the log takes a small
        # request, the Parquet flush after it fails.
        _fill(small_disk / "ballast")
        errors = collector.counters.get("flush_errors")
        assert _grpc_export(channel, requests[1][0]) is None
        acked.add(requests[1][1])
        wait_for(lambda: collector.counters.get("flush_errors"), lambda n: n >= errors + 2)
        assert collector.counters.get("flush_errors") >= errors + 2, "the flush did not fail: is the disk full?"
        assert requests[1][1] not in _stored(root)
        assert collector.wal.checkpoint_seq == 1, "not in Parquet, so still needed from the log"
        segment = next((root / "wal").glob("*.wal"))
        assert bytes.fromhex(requests[1][1][1]) in segment.read_bytes()
        assert _http(f"{url}/readyz")[0] == 503

        (small_disk / "ballast").unlink()
        stored = wait_for(lambda: _stored(root), lambda s: acked <= s.keys())
        assert acked <= stored.keys(), "rows kept in memory were not written when space returned"
        assert wait_for(lambda: collector.wal.checkpoint_seq, lambda seq: seq == 2) == 2

        # Full again: a request the log cannot take is refused and leaves no partial record behind;
        # then the collector stops (cleanly) before the flush can succeed.
        _fill(small_disk / "ballast")
        errors = collector.counters.get("flush_errors")
        assert _grpc_export(channel, requests[2][0]) is None
        acked.add(requests[2][1])
        _assert_retry_info(_grpc_export(channel, too_big), grpc.StatusCode.UNAVAILABLE)
        assert _wal_records(root) == [1, 2, 3]
        wait_for(lambda: collector.counters.get("flush_errors"), lambda n: n >= errors + 1)
    assert requests[2][1] not in _stored(root)
    assert _wal_records(root) == [1, 2, 3]

    (small_disk / "ballast").unlink()
    with Collector(config) as collector:  # replays the log
        assert collector.wal.checkpoint_seq == 3
    _assert_stored_once(root, acked)
    assert len(_stored(root)) == 3, "only what was acknowledged"
    _assert_parquet_readable(root)


def test_failed_checkpoint_write_is_retried_and_the_pipeline_keeps_flushing(tmp_path: Path) -> None:
    """The checkpoint file is written after the Parquet files; a full disk can fail just that write."""
    root = tmp_path / "data"
    requests = [_span_request(n) for n in range(1, 3)]
    with Collector(make_config(root, flush_interval_s=0.2)) as collector:
        checkpoint, failed = collector.wal.checkpoint, []

        def checkpoint_on_a_full_disk(seq: int) -> None:
            if len(failed) < 3:
                failed.append(seq)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            checkpoint(seq)

        collector.wal.checkpoint = checkpoint_on_a_full_disk  # type: ignore[method-assign]
        with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
            assert _grpc_export(channel, requests[0][0]) is None
            assert wait_for(lambda: len(failed), lambda n: n >= 1) >= 1
            assert _grpc_export(channel, requests[1][0]) is None
        stored = wait_for(lambda: _stored(root), lambda s: len(s) == 2)
        assert stored.keys() == {key for _, key in requests}, "the pipeline stopped after the failed checkpoint"
        assert wait_for(lambda: collector.wal.checkpoint_seq, lambda seq: seq == 2) == 2
    with Collector(make_config(root)) as collector:
        assert collector.wal.checkpoint_seq == 2
    _assert_stored_once(root, {key for _, key in requests})


def test_overloaded_write_path_answers_resource_exhausted_then_takes_retries(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", max_queue_mib=1)
    requests = [_span_request(n, blob_bytes=600_000) for n in range(1, 4)]
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        # The write path is stuck (a slow disk, say): logged requests wait before the pipeline
        # takes them, and their bytes stay counted against the queue until the test lets them go.
        submit, held = collector.pipeline.submit, []
        collector.pipeline.submit = lambda *item: held.append(item)  # type: ignore[method-assign]
        try:
            assert _grpc_export(channel, requests[0][0]) is None  # admitted: its bytes now fill the queue
            _assert_retry_info(_grpc_export(channel, requests[1][0]), grpc.StatusCode.RESOURCE_EXHAUSTED)
            status, headers, body = _http(
                f"http://127.0.0.1:{collector.http_port}/v1/traces", requests[2][0].SerializeToString()
            )
            assert status == 429 and int(headers["Retry-After"]) >= 1
            assert status_pb2.Status.FromString(body).code == code_pb2.RESOURCE_EXHAUSTED
        finally:
            collector.pipeline.submit = submit  # type: ignore[method-assign]
            for item in held:
                submit(*item)
        assert len(held) == 1
        # Caught up: the retries are taken (each once the one before has left the queue, as a client
        # honouring RetryInfo would find it).
        for request, _ in requests[1:]:
            assert wait_for(lambda: collector.pipeline.queued_bytes, lambda n: n == 0) == 0
            assert _grpc_export(channel, request) is None
        assert collector.counters.get("refused_requests") == 2
    _assert_stored_once(tmp_path / "data", {key for _, key in requests})
    assert len(_stored(tmp_path / "data")) == 3
