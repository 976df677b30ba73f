"""A SIMULATED OpenAI-compatible model server on loopback, so replays and demos run without an API key.

Comes in: OpenAI chat-completions requests (`POST /v1/chat/completions`, plain or `stream: true`
server-sent events with `stream_options.include_usage`), `GET /v1/models`, `GET /healthz`.
Goes out: answers that look like the real API's (ids, usage, finish reasons, refusals, tool calls,
OpenAI-style error bodies) but come from fixed rules, never from a model. Every answer says so:
`system_fingerprint` is "fp_vigil_simulator", ids start "chatcmpl-sim", the models are
`owned_by: "vigil-simulator"` and each response has the header `x-vigil-simulator: true`.
Must not: listen anywhere but loopback, call out to the network, or answer differently twice.

The rules, in order (replay/sim_answers.py; every "roll" is a SHA-256 of the request, not random):
1. Classify. A system prompt with "Classify ...: a, b, c." is answered with the first label found
   as a word in the user's message, else the last label (the demo's triage call: "order"/"other").
2. Refuse. A request for someone else's account or personal data ("ex-partner's account", "home
   address of", "hack into") is always refused with "I'm sorry, but I can't help with that.". Other
   conversations are refused only when the system prompt has strict-policy wording (STRICT_PHRASES:
   "never discuss", "if in doubt, refuse", "you must not", ...): 22% of them, picked by a roll that
   ignores the system prompt, so any strict prompt refuses the same ones. With a json_schema format
   the refusal goes in `message.refusal` (content null), as OpenAI's structured outputs do.
3. Call a tool. With `tools`, a forced `tool_choice` calls that tool ("required": the one the user's
   message names, else the first); "auto" calls a tool whose name the user's message mentions,
   unless the last message is already a tool result. Arguments follow the tool's JSON schema.
4. Answer JSON. `response_format: json_schema` gets a value that fits the schema. Otherwise, when
   JSON is asked for (`json_object`, or "JSON" in the prompt), the keys are the ones the prompt
   names (`with keys a, b and c` or `{"a": ..., "b": ...}`, the latest message wins), else the
   model snapshot's own shape: gpt-4o-2024-08-06 → {summary, sources, confidence}; gpt-4o-2024-11-20
   (what the `gpt-4o` alias now resolves to) → {answer, citations, confidence, follow_up_questions};
   any other model → {answer, confidence}. gpt-4.1-nano, asked for JSON in the prompt only, wraps
   35% of its answers in prose and a ```json fence.
5. Otherwise a few plain sentences (an order number like #12345 in the question is echoed).
Usage counts are estimates: about 4 characters a token plus OpenAI's per-message overhead;
`max_tokens` / `max_completion_tokens` truncate the content with finish_reason "length".
So for the demo (sample_data/demo/README.md): replaying support-bot's v2 calls with prompt
support-answer v3 (strict wording) raises refusals from ~2% (the harmful asks) to ~24%, and replaying research-agent's
calls recorded on gpt-4o-2024-08-06 against `gpt-4o` returns the other JSON shape.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from replay.sim_requests import ApiError, check_request
from replay.sim_responses import FINGERPRINT, completion, completion_chunks

__all__ = ["FINGERPRINT", "MODELS", "SimulatedLLM", "check_loopback"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
# Model names served → the snapshot that answers (aliases resolve as OpenAI's did on the demo's last day).
MODELS = {
    "gpt-4o": "gpt-4o-2024-11-20",
    "gpt-4o-2024-08-06": "gpt-4o-2024-08-06",
    "gpt-4o-2024-11-20": "gpt-4o-2024-11-20",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-nano-2025-04-14": "gpt-4.1-nano-2025-04-14",
    "claude-sonnet-4": "claude-sonnet-4-20250514",
    "claude-sonnet-4-20250514": "claude-sonnet-4-20250514",
    "vigil-sim": "vigil-sim",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/healthz":
            return self._json(200, {"status": "ok", "simulator": "vigil"})
        if path == "/v1/models":
            return self._json(200, {"object": "list", "data": [self._model(name) for name in self.server.models]})
        if path.startswith("/v1/models/") and path[len("/v1/models/") :] in self.server.models:
            return self._json(200, self._model(path[len("/v1/models/") :]))
        if path.startswith("/v1/models/"):
            return self._error(ApiError(404, f"The model `{path[11:]}` does not exist.", "model", "model_not_found"))
        self._not_found()

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
            self._drain()
            return self._not_found()
        try:
            body = self._body()
            model = check_request(body, self.server.models)
        except ApiError as exc:
            return self._error(exc)
        created = int(time.time())
        if body.get("stream"):
            return self._stream(body, model, created)
        result = completion(body, model, created)
        self._wait(self.server.first_token_s + result["usage"]["completion_tokens"] * self.server.token_delay_s)
        self._json(200, result)
        self._log(result["usage"], model, stream=False)

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "vigil-simulator"}

    def _body(self) -> Any:
        length = self._length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"Request body of {length} bytes is over the simulator's {MAX_BODY_BYTES} byte limit.")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "We could not parse the JSON body of your request. Send valid JSON.") from None

    def _length(self) -> int:
        value = self.headers.get("Content-Length") or "0"
        if not value.isdigit():
            self.close_connection = True
            raise ApiError(400, f"Content-Length {value!r} is not a number of bytes.")
        return int(value)

    def _drain(self) -> None:
        try:
            length = self._length()
        except ApiError:
            return
        if length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _stream(self, body: dict[str, Any], model: str, created: int) -> None:
        self.send_response(200)
        self._headers("text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._wait(self.server.first_token_s)
        usage = None
        for chunk, tokens in completion_chunks(body, model, created):
            self._wait(tokens * self.server.token_delay_s)
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            usage = chunk.get("usage") or usage
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self._log(usage, model, stream=True)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def _not_found(self) -> None:
        self._error(ApiError(404, f"Invalid URL ({self.command} {self.path})", None, "unknown_url"))

    def _error(self, exc: ApiError) -> None:
        self._json(exc.status, exc.body())
        logger.info("rejected status=%d code=%s param=%s", exc.status, exc.code, exc.param)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self._headers("application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _headers(self, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("x-vigil-simulator", "true")
        self.send_header("openai-processing-ms", "0")

    def _log(self, usage: dict[str, Any] | None, model: str, stream: bool) -> None:
        tokens = (usage or {}).get("prompt_tokens"), (usage or {}).get("completion_tokens")
        logger.info("completion model=%s stream=%s prompt_tokens=%s completion_tokens=%s", model, stream, *tokens)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        logger.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    models: dict[str, str]
    first_token_s: float
    token_delay_s: float
    stopping: threading.Event

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (closing its pool, giving up on a stream) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("client %s hung up", client_address)
        else:
            logger.exception("request from %s failed", client_address)


def check_loopback(host: str) -> str:
    """The IPv4 address to bind for `host`, which must be a loopback name or address."""
    try:
        address = socket.gethostbyname(host)
    except OSError:
        raise ValueError(f"cannot resolve {host!r}; use 127.0.0.1") from None
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"the simulator only listens on loopback, not {host!r}; use 127.0.0.1")
    return address


class SimulatedLLM:
    """The simulator on a background thread: `with SimulatedLLM() as llm: OpenAI(base_url=llm.base_url)`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        models: dict[str, str] | None = None,
        first_token_s: float = 0.0,
        token_delay_s: float = 0.0,
    ) -> None:
        self.host = check_loopback(host)
        self._server = _Server((self.host, port), _Handler, bind_and_activate=True)
        self._server.models = dict(MODELS if models is None else models)
        self._server.first_token_s, self._server.token_delay_s = first_token_s, token_delay_s
        self._server.stopping = threading.Event()
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> SimulatedLLM:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-llm", daemon=True)
        self._thread.start()
        logger.info(
            "SIMULATED model server (not a real model) on %s models=%d", self.base_url, len(self._server.models)
        )
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    def __enter__(self) -> SimulatedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
