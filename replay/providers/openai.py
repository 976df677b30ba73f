"""Any OpenAI-compatible `/v1/chat/completions` endpoint through the official `openai` SDK.

Comes in: a `ChatRequest`. Goes out: a `Completion` with the usage the server reported, or a
`ProviderError`: retryable for 429, 5xx, timeouts and connection errors, not for any other 4xx.
The SDK's own retries are off (`max_retries=0`) so the runner's are the only ones and every
attempt is counted against the budget. No key is needed for local servers (vLLM, Ollama, ...).
"""

from __future__ import annotations

import json
from typing import Any

import openai

from replay.providers import Completion, ProviderError, sdk_error
from replay.rebuild import ChatRequest


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, base_url: str | None, api_key: str | None, timeout_s: float) -> None:
        # The SDK insists on a key; local OpenAI-compatible servers ignore it.
        self._client = openai.OpenAI(
            base_url=base_url or None, api_key=api_key or "not-needed", max_retries=0, timeout=timeout_s
        )

    def complete(self, request: ChatRequest) -> Completion:
        kwargs: dict[str, Any] = dict(request.params)
        if request.tools:
            kwargs["tools"] = request.tools
        try:
            response = self._client.chat.completions.create(model=request.model, messages=request.messages, **kwargs)
        except (openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError) as exc:
            raise sdk_error(exc, openai) from None
        return _completion(response)


def _completion(response: Any) -> Completion:
    if not response.choices:
        raise ProviderError("the response has no choices", retryable=False)
    choice = response.choices[0]
    message = choice.message
    calls = [
        {"id": c.id, "name": c.function.name, "arguments": _maybe_json(c.function.arguments)}
        for c in (message.tool_calls or [])
        if getattr(c, "function", None) is not None
    ]
    usage = response.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return Completion(
        text=message.content or "",
        tool_calls=calls,
        finish_reasons=[choice.finish_reason] if choice.finish_reason else [],
        refusal=getattr(message, "refusal", None),
        input_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
        cached_input_tokens=getattr(details, "cached_tokens", None) if details else None,
        response_model=response.model,
        response_id=response.id,
    )


def _maybe_json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return text
