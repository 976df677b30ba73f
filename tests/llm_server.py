"""A scripted OpenAI-compatible server on loopback for the replay tests (real HTTP, real `openai` SDK).

`ScriptedLLM` speaks `POST /v1/chat/completions` with `usage`. Each request is tied to a case by
the first `case-N` it finds in the messages; `failures[case]` lists statuses (429, 500, 400, ...)
answered before that case succeeds, `slow[case]` the seconds each of its next requests waits. Every request
is recorded (case, status) so tests count what the server saw. Answers come from `answer(body)`,
by default a deterministic echo; usage is computed from the request (`prompt_tokens(body)`) and
bounded by `max_tokens` unless `ignore_max_tokens` is set.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_CASE = re.compile(r"case-\d+")


def default_answer(body: dict[str, Any]) -> str:
    last = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    return f"Here is the answer to: {last}"


def default_prompt_tokens(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body["messages"]).encode()) // 4)


class ScriptedLLM:
    def __init__(
        self,
        answer: Callable[[dict[str, Any]], str] = default_answer,
        failures: dict[str, list[int]] | None = None,
        slow: dict[str, list[float]] | None = None,
        prompt_tokens: Callable[[dict[str, Any]], int] = default_prompt_tokens,
        completion_tokens: Callable[[dict[str, Any], str], int] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.answer, self.prompt_tokens, self.delay_s = answer, prompt_tokens, delay_s
        self.completion_tokens = completion_tokens or (lambda body, text: len(text.split()))
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.slow = {k: list(v) for k, v in (slow or {}).items()}
        self.requests: list[tuple[str | None, int]] = []
        self.bodies: list[dict[str, Any]] = []
        self.usage: list[tuple[int, int]] = []  # (prompt, completion) tokens of every answer given
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, status: int | None = None) -> Counter:
        """Requests per case (only those answered with `status`, when given)."""
        return Counter(case for case, s in self.requests if status is None or s == status)

    def _respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        case = _case_of(body)
        with self._lock:
            script = self.failures.get(case, [])
            status = script.pop(0) if script else 200
            self.requests.append((case, status))
            self.bodies.append(body)
            delays = self.slow.get(case, [])
            delay = delays.pop(0) if delays else self.delay_s
        if delay:
            time.sleep(delay)
        if status != 200:
            headers = {"retry-after": "0"} if status == 429 else {}
            return status, {"error": {"message": f"scripted {status}", "type": "scripted", "code": status}}, headers
        text = self.answer(body)
        completion = self.completion_tokens(body, text)
        if body.get("max_tokens") is not None:
            completion = min(completion, int(body["max_tokens"]))
        prompt = self.prompt_tokens(body)
        with self._lock:
            self.usage.append((prompt, completion))
        return 200, _completion(body, text, prompt, completion), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}}, {})
                    return
                self._send(*server._respond(json.loads(self.rfile.read(length))))

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _case_of(body: dict[str, Any]) -> str | None:
    found = _CASE.search(json.dumps(body["messages"]))
    return found.group(0) if found else None


def _completion(body: dict[str, Any], text: str, prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{abs(hash(text)) % 10**8}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
