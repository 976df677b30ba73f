"""Model providers: one `ChatRequest` in, one `Completion` out, or a `ProviderError` saying whether to retry.

A provider makes exactly one attempt per `complete` call: retries, backoff and the budget belong
to `replay.runner`, so the client library's own retries are turned off. `get_provider(name, ...)`
builds one by name: `openai` (any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp
server, LiteLLM proxy) and `anthropic` (the Messages API; optional extra `vigil[anthropic]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from replay.rebuild import ChatRequest


class ProviderError(Exception):
    """One failed attempt. `retryable`: 429, 5xx, timeout or connection error; `maybe_billed`: the provider
    may have processed the request (a timeout), so its reserved cost counts as spent."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, maybe_billed: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.maybe_billed = maybe_billed
        self.retry_after_s: float | None = None


def sdk_error(exc: Exception, sdk: ModuleType) -> ProviderError:
    """An exception of the `openai` or `anthropic` SDK (generated alike: the same error classes) → ProviderError."""
    if isinstance(exc, sdk.APITimeoutError):  # before APIConnectionError, its base class
        return ProviderError(f"timeout: {exc}", retryable=True, maybe_billed=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(f"connection error: {exc}", retryable=True)
    status = exc.status_code
    error = ProviderError(f"HTTP {status}: {exc.message}", retryable=status == 429 or status >= 500, status=status)
    error.retry_after_s = _retry_after(exc.response.headers.get("retry-after"))
    return error


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff applies


@dataclass
class Completion:
    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{id, name, arguments}]
    finish_reasons: list[str] = field(default_factory=list)
    refusal: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    response_model: str | None = None
    response_id: str | None = None


class Provider(Protocol):
    name: str  # the gen_ai provider name used for pricing and tracing (openai, anthropic, ...)

    def complete(self, request: ChatRequest) -> Completion: ...


def get_provider(name: str, *, base_url: str | None, api_key: str | None, timeout_s: float) -> Provider:
    if name == "openai":
        from replay.providers.openai import OpenAIProvider

        return OpenAIProvider(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    if name == "anthropic":
        from replay.providers.anthropic import AnthropicProvider

        return AnthropicProvider(base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    raise ValueError(
        f"unknown provider {name!r}; use openai (any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, "
        "llama.cpp server, LiteLLM proxy) or anthropic"
    )
