"""The bundled genai-prices table → per-token rates a call can be priced with in plain floats.

Comes in: our normalized provider (`gen_ai.provider.name` and friends, lowercased) and a model
name, and the call's time. Goes out: `Rates` in USD per million tokens, and the name of the entry
that matched (`openai:gpt-4o-mini`), or None when the table has no price. Must not: touch the
network. The table is the one shipped inside the installed `genai-prices` package (its own data
module, read once); its opt-in `UpdatePrices` background fetch is never started, and a snapshot
another library might have fetched into the process is never consulted, so prices change only
when the package is upgraded (`uv lock --upgrade-package genai-prices`).

Why floats and not `genai_prices.calc_price`: that walks Decimal arithmetic and unit registries,
about 200 µs a call, more than the whole normalization of a span. Rates are compiled once per
price entry and then applied with a few multiplications (`cost_usd`); the tests check the result
against `calc_price` model by model. The rules are genai-prices' own: a token kind without a
price of its own (cache reads, cache writes, reasoning) is billed as its parent (input, output);
a tiered price applies to every token once the call's total input passes the tier's threshold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices.data import providers as _BUNDLED_PROVIDERS
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

# (base USD per million tokens, ((threshold on total input tokens, USD per million), ...) ascending)
Rate = tuple[float, tuple[tuple[int, float], ...]]

# Our provider names (semconv values of every generation, OpenInference spellings) → genai-prices ids.
# Other names go through genai-prices' own provider matching, then the model name alone.
TABLE_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "aws": "aws",
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure.ai.inference": "azure",
    "azure": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gcp.gemini": "google",
    "vertex_ai": "google",
    "google": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "together_ai": "together",
    "togetherai": "together",
    "fireworks_ai": "fireworks",
    "moonshot": "moonshotai",
}
# Self-hosted runtimes: a model there costs what the user's hardware costs, never a cloud list
# price that happens to match its name, so only an override prices it.
SELF_HOSTED = frozenset(
    {"ollama", "vllm", "tgi", "llama.cpp", "llama_cpp", "lmstudio", "localai", "local", "sglang", "triton"}
)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens. None: this kind is billed as its parent (input or output)."""

    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    per_call: float = 0.0  # a flat price per request, in USD


def flat(price: float) -> Rate:
    return (float(price), ())


def cost_usd(rates: Rates, inputs: int, outputs: int, cache_read: int, cache_write: int, reasoning: int) -> float:
    """Total cost of a call; `inputs` includes cache reads and writes, `outputs` includes reasoning."""
    plain_in = inputs - (cache_read if rates.cache_read else 0) - (cache_write if rates.cache_write else 0)
    plain_out = outputs - (reasoning if rates.reasoning else 0)
    total = plain_in * _at(rates.input, inputs) + plain_out * _at(rates.output, inputs)
    if rates.cache_read:
        total += cache_read * _at(rates.cache_read, inputs)
    if rates.cache_write:
        total += cache_write * _at(rates.cache_write, inputs)
    if rates.reasoning:
        total += reasoning * _at(rates.reasoning, inputs)
    return total / 1_000_000 + rates.per_call


def _at(rate: Rate, inputs: int) -> float:
    base, tiers = rate
    for start, price in reversed(tiers):
        if inputs > start:
            return price
    return base


class PriceTable:
    """Model lookups against the bundled table, cached: the same few models come back all day."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._snapshot = DataSnapshot(providers=_BUNDLED_PROVIDERS, from_auto_update=False)
        self._find = functools.lru_cache(maxsize=cache_size)(self._find_uncached)
        self._cache_size = cache_size
        self._misses = 0
        self._compiled: dict[int, tuple[ModelPrice, Rates | None]] = {}

    def find(self, provider: str | None, model: str) -> tuple[ModelInfo, str] | None:
        """The table's entry for `model` as served by `provider`, and its name; None: no price."""
        return self._find(provider, model.lower())

    def rates(self, entry: ModelInfo, start_time_ns: int | None) -> Rates | None:
        """The entry's rates in force at the call's time (prices change; some by time of day)."""
        if isinstance(entry.prices, ModelPrice):
            price = entry.prices  # no history: skip building a datetime
        else:
            when = datetime.now(UTC) if start_time_ns is None else datetime.fromtimestamp(start_time_ns / 1e9, UTC)
            price = entry.get_prices(when)
        found = self._compiled.get(id(price))
        if found is None:
            # Keyed by identity, the price object kept alongside so its id cannot be reused.
            found = self._compiled[id(price)] = (price, _compile(price))
        return found[1]

    @staticmethod
    def timeless(entry: ModelInfo) -> bool:
        """True when the entry has one price for all time (no history, no time-of-day rates)."""
        return isinstance(entry.prices, ModelPrice)

    def _find_uncached(self, provider: str | None, model: str) -> tuple[ModelInfo, str] | None:
        self._misses += 1
        if self._misses % self._cache_size == 0:
            # The snapshot memoizes every name it was asked about; a fresh one bounds that memory
            # when senders invent model names (fine-tune ids, typos) without end.
            self._snapshot = DataSnapshot(providers=_BUNDLED_PROVIDERS, from_auto_update=False)
        if provider in SELF_HOSTED:
            return None
        table_id = TABLE_PROVIDERS.get(provider or "")
        if table_id is None and provider:
            known = find_provider_by_id(self._snapshot.providers, provider)
            table_id = known.id if known is not None else None
        attempts: list[tuple[str | None, str]] = [(table_id, model)] if table_id else []
        attempts.append((None, model))  # an OpenAI-compatible endpoint serving another vendor's model
        vendor, slash, rest = model.partition("/")
        if slash and rest:  # "anthropic/claude-..." (LiteLLM, OpenRouter): the vendor names the provider
            attempts += [(TABLE_PROVIDERS.get(vendor, vendor), rest), (None, rest)]
        for provider_id, name in attempts:
            try:
                found, entry = self._snapshot.find_provider_model(name, None, provider_id, None)
            except LookupError:
                continue
            return entry, f"{found.id}:{entry.id}"
        return None


def _compile(price: ModelPrice) -> Rates | None:
    """A genai-prices price → Rates; None when it has no token price (audio by the hour, pages)."""
    inputs, outputs = _rate(price.input_mtok), _rate(price.output_mtok)
    if inputs is None and outputs is None:
        return None
    requests = price.requests_kcount
    return Rates(
        input=inputs or flat(0),
        output=outputs or flat(0),
        cache_read=_rate(price.cache_read_mtok),
        cache_write=_rate(price.cache_write_mtok),
        reasoning=_rate(price.output_reasoning_mtok),
        per_call=float(requests) / 1000 if isinstance(requests, Decimal) else 0.0,
    )


def _rate(value: Decimal | TieredPrices | None) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, TieredPrices):
        return (float(value.base), tuple((tier.start, float(tier.price)) for tier in value.tiers))
    return flat(float(value))
