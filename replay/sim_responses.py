"""The simulated model's answers as OpenAI chat-completion objects: `chat.completion` and its stream chunks.

Comes in: a checked request body and the snapshot that answers it. Goes out: the JSON objects the
API returns (choices, usage, the simulator's fingerprint), built from replay/sim_answers.py's
choices. Pure: the HTTP layer (replay/simulator.py) writes them and does the waiting.
"""

from __future__ import annotations

import re
from typing import Any

from replay.sim_answers import Choice, answer, estimate_tokens, prompt_tokens, roll

FINGERPRINT = "fp_vigil_simulator"


def completion(body: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """The `chat.completion` object for a checked request (no waiting)."""
    choices = [_limit(answer(body, model, i), body) for i in range(body.get("n") or 1)]
    return {
        "id": _completion_id(body, model),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(choices)
        ],
        "usage": _usage(body, choices),
    }


def completion_chunks(body: dict[str, Any], model: str, created: int):
    """(chunk, tokens in it) pairs of a streamed completion, the usage chunk last when asked for."""
    choices = [_limit(answer(body, model, i), body) for i in range(body.get("n") or 1)]
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {"id": _completion_id(body, model), "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": FINGERPRINT}  # fmt: skip
    extra = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return base | {"choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]} | extra

    for i, choice in enumerate(choices):
        yield chunk(i, {"role": "assistant", "content": "" if choice.content is not None else None}), 0
        for piece in re.findall(r"\S+\s*|\s+", choice.content or ""):
            yield chunk(i, {"content": piece}), estimate_tokens(piece)
        if choice.refusal:
            yield chunk(i, {"refusal": choice.refusal}), estimate_tokens(choice.refusal)
        for n, call in enumerate(choice.tool_calls):
            head = {"index": n, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"],
                                                                                   "arguments": ""}}  # fmt: skip
            yield chunk(i, {"tool_calls": [head]}), 0
            arguments = call["function"]["arguments"]
            yield (
                chunk(i, {"tool_calls": [{"index": n, "function": {"arguments": arguments}}]}),
                estimate_tokens(arguments),
            )
        yield chunk(i, {}, choice.finish_reason), 0
    if include_usage:
        yield base | {"choices": [], "usage": _usage(body, choices)}, 0


def _completion_id(body: dict[str, Any], model: str) -> str:
    return f"chatcmpl-sim{int(roll('id', model, body) * 2**64):016x}"


def _message(choice: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": choice.refusal}
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    return message | {"annotations": []}


def _completion_tokens(choice: Choice) -> int:
    arguments = "".join(c["function"]["arguments"] for c in choice.tool_calls)
    return estimate_tokens((choice.content or "") + (choice.refusal or "") + arguments) + 1


def _usage(body: dict[str, Any], choices: list[Choice]) -> dict[str, Any]:
    prompt, completion_tokens = prompt_tokens(body), sum(_completion_tokens(c) for c in choices)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }  # fmt: skip


def _limit(choice: Choice, body: dict[str, Any]) -> Choice:
    """Cut the content at max_(completion_)tokens, as a real model stops mid-sentence."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not limit or choice.content is None or estimate_tokens(choice.content) + 1 <= limit:
        return choice
    return Choice(content=choice.content[: max(limit - 1, 0) * 4], finish_reason="length")
