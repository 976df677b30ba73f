"""OTLP/HTTP (`POST /v1/traces`, ...) plus `/healthz`, `/readyz` and `/metrics` on one listener.

Comes in: HTTP/1.1 requests, protobuf (`application/x-protobuf`) or OTLP/JSON
(`application/json`) bodies, optionally gzip-compressed. Goes out: the same answers as gRPC,
mapped to HTTP as the OTLP/HTTP spec says (https://opentelemetry.io/docs/specs/otlp/#failures-1):
200 with the Export response in the request's encoding, 400 with a google.rpc.Status for bad
data, 413 for a body over the size limit, 429/503 with `Retry-After` when the client should
retry later.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import zlib
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.message import DecodeError, Message

from collector.auth import Unauthenticated
from collector.otlp_json import decode_json, encode_json
from collector.service import ADMIT_WAIT_S, RETRY_AFTER_S, Ingest, Overloaded, google_status, status_for
from collector.signals import SIGNALS
from store.outcomes import verdict_row

logger = logging.getLogger(__name__)

PROTOBUF, JSON = "application/x-protobuf", "application/json"
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
}
TLS_HANDSHAKE_TIMEOUT_S = 10
_ROUTES = {signal.http_path: signal for signal in SIGNALS.values()}
OUTCOMES_PATH = "/v1/outcomes"


class TooLarge(Exception):
    pass


class HttpFrontEnd:
    """The HTTP listener; `readiness()` returns '' when ready or the reason it is not."""

    def __init__(
        self,
        host: str,
        port: int,
        ingest: Ingest,
        max_body_bytes: int,
        readiness: Callable[[], str],
        metrics_text: Callable[[], str],
        record_verdicts: Callable[[list[dict]], int],
        tls: ssl.SSLContext | None = None,
        exports_at_once: int = 8,
    ) -> None:
        handler = type(
            "Handler",
            (_Handler,),
            {
                "ingest": ingest,
                "max_body": max_body_bytes,
                "export_slots": threading.BoundedSemaphore(exports_at_once),
                "readiness": staticmethod(readiness),
                "metrics_text": staticmethod(metrics_text),
                "record_verdicts": staticmethod(record_verdicts),
            },
        )
        self.server = _Server((host, port), handler)
        self.server.tls = tls
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    tls: ssl.SSLContext | None = None
    # socketserver's default backlog of 5 overflowed when 32 senders (re)connected at once, and
    # some of them were reset.
    request_queue_size = 128

    def get_request(self) -> tuple[socket.socket, tuple]:
        sock, address = super().get_request()
        if self.tls is None:
            return sock, address
        # The handshake waits for the request's own thread (finish_request), so a slow or
        # silent client cannot hold up the accept loop.
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
            request.do_handshake()
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: object, client_address: tuple) -> None:
        # A client that hangs up mid-request is routine, not a traceback on stderr.
        logger.debug("http connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vigil"
    ingest: Ingest
    max_body: int
    # A thread per connection: without a bound, 32 senders of 5 MB requests held 32 bodies (and their
    # parses) at once, past the memory budget (collector + workers 688-719 MB PSS; 457 with it), as the
    # queue's room check is a hint that let them all through.
    export_slots: threading.BoundedSemaphore
    readiness: Callable[[], str]
    metrics_text: Callable[[], str]
    record_verdicts: Callable[[list[dict]], int]

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        if self.path == "/healthz":
            self._reply(HTTPStatus.OK, b"ok\n", "text/plain")
        elif self.path == "/readyz":
            problem = self.readiness()
            status = HTTPStatus.SERVICE_UNAVAILABLE if problem else HTTPStatus.OK
            self._reply(status, (problem or "ready").encode() + b"\n", "text/plain")
        elif self.path == "/metrics":
            self._reply(HTTPStatus.OK, self.metrics_text().encode(), "text/plain; version=0.0.4")
        elif self.path in _ROUTES:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, b"use POST\n", "text/plain", {"Allow": "POST"})
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == OUTCOMES_PATH or path in _ROUTES:
            try:
                project = self.ingest.authenticate(self.headers.items())
            except Unauthenticated as exc:
                self._discard_body()
                content_type = JSON if path == OUTCOMES_PATH else self._content_type()
                self._error(content_type, HTTPStatus.UNAUTHORIZED, grpc.StatusCode.UNAUTHENTICATED, str(exc))
                return
        if path == OUTCOMES_PATH:
            self._post_outcomes(project)
            return
        signal = _ROUTES.get(path)
        if signal is None:
            self._discard_body()
            self._reply(
                HTTPStatus.NOT_FOUND, b"unknown path; OTLP paths are /v1/traces, /v1/logs, /v1/metrics\n", "text/plain"
            )
            return
        content_type = self._content_type()
        if content_type not in (PROTOBUF, JSON):
            self._discard_body()
            self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"use {PROTOBUF} or {JSON}\n".encode(), "text/plain")
            return
        if not self.export_slots.acquire(timeout=ADMIT_WAIT_S):
            self._discard_body()
            self.ingest.counters.add(refused_requests=1)
            message = "too many Export requests at once; retry after Retry-After seconds"
            self._error(content_type, HTTPStatus.SERVICE_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, message, True)
            return
        try:
            self._refuse_if_full()
            body = self._read_body()
            if content_type == JSON:
                request: Message = decode_json(body, signal.request_type)
                response = self.ingest.export_message(signal, request, project=project)
            else:
                response = self.ingest.export(signal, body, project)
        except TooLarge as exc:
            self._error(content_type, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            return
        except Exception as exc:
            code, message, retry = status_for(exc)
            if retry:
                self.ingest.counters.add(refused_requests=1)
            status = _HTTP_STATUS.get(code, HTTPStatus.INTERNAL_SERVER_ERROR)
            self._error(content_type, status, code, message, retry)
            return
        finally:
            self.export_slots.release()
        body_out = encode_json(response) if content_type == JSON else response.SerializeToString()
        self._reply(HTTPStatus.OK, body_out, content_type)

    def _content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _post_outcomes(self, project: str | None) -> None:
        """Task verdicts as JSON: one `{trace_id, outcome, score?, comment?, source?}` or a list of them; with
        auth on they judge only traces of the key's `project`."""
        try:
            document = json.loads(self._read_body())
            items = document if isinstance(document, list) else [document]
            rows = [
                verdict_row(
                    item["trace_id"],
                    item["outcome"],
                    item.get("score"),
                    item.get("comment"),
                    item.get("source") or "http",
                    project=project,
                )
                for item in items
            ]
        except TooLarge as exc:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _json_error(str(exc)), JSON)
            return
        except (ValueError, TypeError, KeyError, AttributeError, DecodeError) as exc:
            message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            hint = 'expected {"trace_id": "<32 hex>", "outcome": "success|failure", "score"?, "comment"?}'
            self._reply(HTTPStatus.BAD_REQUEST, _json_error(f"{message}; {hint}"), JSON)
            return
        try:
            accepted = self.record_verdicts(rows)
        except OSError as exc:
            body = _json_error(f"cannot store verdicts right now: {exc.strerror}; retry later")
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, body, JSON, {"Retry-After": str(RETRY_AFTER_S)})
            return
        self._reply(HTTPStatus.OK, json.dumps({"accepted": accepted}).encode(), JSON)

    def _refuse_if_full(self) -> None:
        """Refuse an Export the queue could not take before reading its body into memory (the
        handler checks again, exactly, once it has the request)."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and not self.ingest.pipeline.wait_for_room(int(length), ADMIT_WAIT_S):
            self._discard_body()  # read in 64 KiB pieces and dropped, so the client gets our answer
            raise Overloaded(self.ingest.pipeline.why_full())

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise DecodeError("a Content-Length header is required")
        size = int(length)
        if size > self.max_body:
            self._discard_body()  # so the client can read our answer instead of a broken pipe
            raise TooLarge(f"body of {size} bytes is over the {self.max_body} byte limit")
        body = self.rfile.read(size)
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            try:
                body = inflater.decompress(body, self.max_body + 1)
            except zlib.error as exc:
                raise DecodeError(f"gzip body is corrupt: {exc}") from None
            if len(body) > self.max_body or inflater.unconsumed_tail:
                raise TooLarge(f"decompressed body is over the {self.max_body} byte limit")
        elif encoding != "identity":
            raise DecodeError(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
        return body

    def _discard_body(self) -> None:
        """Read and drop a body we will not use; past 4x the limit, hang up instead."""
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > 4 * self.max_body:
            self.close_connection = True
            return
        left = int(length)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def _error(
        self, content_type: str, status: HTTPStatus, code: grpc.StatusCode, message: str, retry: bool = False
    ) -> None:
        detail = google_status(code, message, retry)
        body = encode_json(detail) if content_type == JSON else detail.SerializeToString()
        headers = {"Retry-After": str(RETRY_AFTER_S)} if retry else {}
        if status == HTTPStatus.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Bearer realm="vigil"'
        if content_type not in (PROTOBUF, JSON):
            body, content_type = f"{message}\n".encode(), "text/plain"
        self._reply(status, body, content_type, headers)

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("http %s", format % args)


def _json_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
