"""Backpressure on decoded rows: memory stays bounded when the Parquet writer cannot keep up.

The ingest queue (`max_queue_mib`, undecoded requests) has its own tests in test_full_disk.py and
test_export_status.py. Here the write path behind it is stuck: `spans/` is a plain file, so every
flush of the `spans` table fails (as on a broken disk) and the decoded rows stay in memory. Once
they pass `flush_max_mib`, Export answers RESOURCE_EXHAUSTED with RetryInfo over gRPC and 429 with
Retry-After over HTTP, nothing more is logged, and /metrics shows the buffered bytes. When the
writer works again the buffers drain and the refused data, sent again, is stored — every span
exactly once, also in the raw tables (a refused request was never logged, so nothing doubles).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc
from google.rpc import code_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector.server import Collector
from tests.conftest import make_config, query, wait_for
from tests.test_full_disk import _assert_retry_info, _grpc_export, _http, _span_request

BLOB_BYTES = 300_000  # decoded, each request adds about this much to the buffers


def _block_spans_table(root: Path) -> Path:
    """Make every flush of `spans` fail: its folder is a plain file (mkdir raises, like a bad disk)."""
    root.mkdir(parents=True, exist_ok=True)
    blocker = root / "spans"
    blocker.write_bytes(b"not a folder")
    return blocker


def _unblock(blocker: Path) -> None:
    blocker.unlink()


def _raw_counts(root: Path) -> dict[tuple[str, str], int]:
    rows = query(root, "SELECT trace_id, span_id, count(*) AS n FROM spans_raw GROUP BY ALL")
    return {(row["trace_id"], row["span_id"]): row["n"] for row in rows}


def test_stuck_writer_refuses_once_decoded_rows_fill_memory_then_takes_the_retries(tmp_path: Path) -> None:
    root = tmp_path / "data"
    blocker = _block_spans_table(root)
    config = make_config(root, flush_max_mib=1, max_queue_mib=4)
    acked, refused = [], None
    with Collector(config) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        limit = collector.pipeline.max_buffer_bytes
        for number in range(1, 40):  # about 4 requests fill 1 MiB; the bound keeps the loop finite
            request, key = _span_request(number, blob_bytes=BLOB_BYTES)
            # Each acknowledged request is decoded into the buffers before the next is sent.
            wait_for(lambda: collector.pipeline.queued_bytes, lambda n: n == 0)
            error = _grpc_export(channel, request)
            if error is not None:
                refused = (request, key, error)
                break
            acked.append(key)
        assert refused is not None, "never refused: the decoded rows grew without bound"
        _assert_retry_info(refused[2], grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "buffered" in refused[2].details()
        assert collector.counters.get("flush_errors") >= 1
        buffered = collector.counters.get("buffered_bytes")
        assert limit <= buffered <= limit + 2 * BLOB_BYTES, "refused only once the limit was reached"
        assert f"vigil_buffered_bytes {buffered:g}" in collector.metrics_text()

        http_request, http_key = _span_request(100, blob_bytes=BLOB_BYTES)
        url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
        status, headers, body = _http(url, http_request.SerializeToString())
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert status_pb2.Status.FromString(body).code == code_pb2.RESOURCE_EXHAUSTED
        assert collector.wal.checkpoint_seq == 0, "nothing may be checkpointed before it is in Parquet"

        _unblock(blocker)  # the writer works again: the next flush writes the buffers out
        assert wait_for(lambda: collector.counters.get("buffered_bytes"), lambda n: n == 0) == 0
        assert _grpc_export(channel, refused[0]) is None, "the retry is taken once the buffers drained"
        status, _, _ = _http(url, http_request.SerializeToString())
        assert status == 200
    expected = {*acked, refused[1], http_key}
    raw = _raw_counts(root)
    assert raw.keys() == expected, "only what was acknowledged, and all of it"
    assert set(raw.values()) == {1}, "a span was written twice"
    assert len(query(root, "SELECT * FROM llm_calls_raw")) == len(expected)


def test_real_exporter_rides_out_a_stuck_writer_and_its_spans_are_stored_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    blocker = _block_spans_table(root)
    # Exports can reach the queue faster than they are decoded, so the buffers may pass their limit
    # by what was queued then; 12 exports of ~330 KB are more than 1 MiB of buffers plus 1 MiB of
    # queue, so some must be refused whatever the timing.
    config = make_config(root, flush_max_mib=1, max_queue_mib=1)
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("backpressure-test")
    batches = []
    for batch in range(12):
        for index in range(3):
            with tracer.start_as_current_span("chat gpt-4o") as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.request.model", "gpt-4o")
                span.set_attribute("blob", os.urandom(55_000).hex())
                span.set_attribute("batch", f"{batch}.{index}")
        batches.append(finished.get_finished_spans())
        finished.clear()
    provider.shutdown()

    with Collector(config) as collector:
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True, timeout=60)
        results: list[SpanExportResult] = []
        # The exporter blocks while it retries (honouring RetryInfo), so it runs beside the test.
        sender = threading.Thread(target=lambda: results.extend(exporter.export(b) for b in batches))
        sender.start()
        refused = wait_for(lambda: collector.counters.get("refused_requests"), lambda n: n >= 1, timeout_s=30)
        assert refused >= 1, "the exporter was never refused: the buffers grew without bound"
        bound = collector.pipeline.max_buffer_bytes + 2 * collector.pipeline.max_queue_bytes
        assert collector.counters.get("buffered_bytes") <= bound
        _unblock(blocker)
        sender.join(timeout=60)
        assert not sender.is_alive()
        exporter.shutdown()
    assert results == [SpanExportResult.SUCCESS] * len(batches), "the exporter gave up on acknowledged-later data"
    rows = query(root, "SELECT attributes, count(*) AS n FROM spans_raw GROUP BY ALL")
    assert len(rows) == 12 * 3 and {row["n"] for row in rows} == {1}, "each span stored exactly once"
