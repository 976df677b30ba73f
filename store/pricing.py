"""LLM calls → `cost_usd`, `cost_source` and `price_model`, offline.

Comes in: one call's provider, models, token counts, start time and any cost the instrumentation
reported (`Pricer.price`), or a whole `llm_calls` Arrow table (`Pricer.price_table`, used on
ingest, off the acknowledgement path, and by `vigil reprice`). Goes out: the cost in USD and
where it came from. Must not: fetch prices at run time (see `store.price_table`), raise on a
row it cannot price, or turn "unknown" into zero: a call without a price gets
`cost_usd = NULL, cost_source = 'unpriced'`.

Where the cost comes from, first that applies:
  1. reported: a cost the instrumentation put on the span (`gen_ai.usage.cost`, OpenInference
     `llm.cost.total`, ...), when above zero. A reported 0 stands only if 2. and 3. find no price,
     because several SDKs report 0 for "don't know".
  2. override: an entry of the user's price file (`store.price_overrides`), response model first.
  3. table: the bundled genai-prices table, response model first (a dated snapshot such as
     `gpt-4o-mini-2024-07-18` is the most precise name), then the request model; the price in
     force at the call's start time, with its tiers.
  4. unpriced: no model, no usage on a successful call, or no price. A failed call without usage
     costs 0 when its model has a price: the provider bills no tokens for it.

Token conversion (stored columns → what prices apply to), following the OTel GenAI semconv:
  - `input_tokens` counts every input token, cached reads and cache writes included
    (`cached_input_tokens`, `cache_creation_input_tokens` are parts of it), as OpenAI reports
    and as OpenLLMetry and OpenInference report Anthropic calls. A sender that copied
    Anthropic's API numbers instead (input excludes both) shows itself when the parts exceed
    the whole; then input = input + cache reads + cache writes. An exclusive count with more
    uncached than cached tokens cannot be told apart and is priced as inclusive.
  - `output_tokens` includes `reasoning_tokens` (OpenAI); when reasoning exceeds output it was
    counted apart (some Gemini instrumentations) and is added.
  - uncached input = input - cache reads - cache writes, each part at its own price where the
    entry has one, else at the input price; reasoning at the output price unless priced apart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from store.config import PricingConfig
from store.price_overrides import Overrides, load_overrides
from store.price_table import PriceTable, Rates, cost_usd

logger = logging.getLogger(__name__)

REPORTED, TABLE, OVERRIDE, UNPRICED = "reported", "table", "override", "unpriced"
_NS = pa.timestamp("ns", tz="UTC")
_OUTPUTS = (("cost_usd", pa.float64()), ("cost_source", pa.string()), ("price_model", pa.string()))
_INPUTS = (
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "status",
)


class Price(NamedTuple):
    cost_usd: float | None
    cost_source: str
    price_model: str | None  # the entry that priced it: "openai:gpt-4o-mini", "override:my-llama-*"


class Pricer:
    def __init__(self, overrides_file: str | Path | None = None) -> None:
        self.overrides_file = str(overrides_file) if overrides_file else None
        self._overrides = Overrides(load_overrides(overrides_file) if overrides_file else [])
        self._table = PriceTable()

    def __reduce__(self) -> tuple:
        """Pickled as its price file's path: a decode worker process builds its own from it."""
        return Pricer, (self.overrides_file,)

    @classmethod
    def from_config(cls, config: PricingConfig) -> Pricer:
        """From `Config.pricing`; raises ConfigError when the price file is missing or wrong."""
        return cls(config.overrides_file or None)

    def price(
        self,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        start_time_ns: int | None = None,
        reported_cost: float | None = None,
        status: str | None = None,
    ) -> Price:
        if reported_cost is not None and reported_cost > 0:
            return Price(float(reported_cost), REPORTED, None)
        found, _ = self._lookup(provider, request_model, response_model, start_time_ns)
        tokens = (input_tokens, output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens)
        return _apply(found, tokens, reported_cost, status)

    def price_table(self, calls: pa.Table) -> pa.Table:
        """`calls` with its cost columns (re)computed; rows whose source is 'reported' keep their cost."""
        rows = calls.num_rows
        if rows == 0:
            return calls
        schema = calls.schema  # `column_names` rebuilds a list each time: slow on a 50-column table
        missing = [None] * rows

        def column(name: str) -> list:
            return calls[name].to_pylist() if schema.get_field_index(name) >= 0 else missing

        start_ns = missing
        if schema.get_field_index("start_time") >= 0 and calls["start_time"].num_chunks:
            times = calls["start_time"]
            if times.type != _NS:  # another writer's unit (µs): nanoseconds, as our schema has them
                times = times.cast(_NS)
            start_ns = pa.chunked_array([chunk.view(pa.int64()) for chunk in times.chunks], pa.int64()).to_pylist()
        memo: dict[tuple, tuple[Rates, str, str] | None] = {}  # one lookup per model in the batch
        priced = []
        for provider, request, response, *tokens, status, start, cost, source in zip(
            *map(column, _INPUTS), start_ns, column("cost_usd"), column("cost_source"), strict=True
        ):
            try:
                if source == REPORTED and cost:
                    priced.append(Price(cost, REPORTED, None))
                    continue
                key = (provider, request, response)
                if key in memo:
                    found = memo[key]
                else:
                    found, timeless = self._lookup(provider, request, response, start)
                    if timeless:
                        memo[key] = found
                priced.append(_apply(found, tokens, cost if source == REPORTED else None, status))
            except Exception:  # a pricing bug must not cost the row; it is stored unpriced
                logger.exception("pricing failed model=%r", response or request)
                priced.append(Price(None, UNPRICED, None))
        for index, (name, kind) in enumerate(_OUTPUTS):
            values = pa.array([p[index] for p in priced], kind)
            position = calls.schema.get_field_index(name)
            if position < 0:
                calls = calls.append_column(pa.field(name, kind), values)
            else:
                calls = calls.set_column(position, pa.field(name, kind), values)
        return calls

    def _lookup(
        self, provider: str | None, request_model: str | None, response_model: str | None, start_time_ns: int | None
    ) -> tuple[tuple[Rates, str, str] | None, bool]:
        """(rates, source, entry name) or None, and whether the answer is the same at any time."""
        provider = provider.lower() if provider else None
        models = [m for m in (response_model, request_model) if m]
        timeless = not any(self._overrides.dated(provider, model) for model in models)
        for model in models:
            entry = self._overrides.find(provider, model, start_time_ns)
            if entry is not None:
                return (entry.rates, OVERRIDE, entry.label), timeless
        for model in models:
            found = self._table.find(provider, model)
            if found is not None:
                rates = self._table.rates(found[0], start_time_ns)
                if rates is not None:
                    return (rates, TABLE, found[1]), timeless and self._table.timeless(found[0])
        return None, timeless


def _apply(
    found: tuple[Rates, str, str] | None, tokens: Sequence[int | None], reported: float | None, status: str | None
) -> Price:
    if found is None:
        return Price(0.0, REPORTED, None) if reported == 0 else Price(None, UNPRICED, None)
    rates, source, label = found
    if tokens[0] is None and tokens[1] is None:
        # No usage: a failed call was not billed; a successful one is unmapped, its cost unknown.
        return Price(0.0, source, label) if status == "error" else Price(None, UNPRICED, label)
    return Price(cost_usd(rates, *billable_tokens(*tokens)), source, label)


def billable_tokens(
    inputs: int | None, outputs: int | None, cache_read: int | None, cache_write: int | None, reasoning: int | None
) -> tuple[int, int, int, int, int]:
    """Stored counts → (input incl. cache, output incl. reasoning, cache read, cache write, reasoning)."""
    inputs, outputs = inputs or 0, outputs or 0
    cache_read, cache_write, reasoning = cache_read or 0, cache_write or 0, reasoning or 0
    if cache_read + cache_write > inputs:  # counted apart, as Anthropic's API does
        inputs += cache_read + cache_write
    if reasoning > outputs:  # counted apart from the answer
        outputs += reasoning
    return inputs, outputs, cache_read, cache_write, reasoning


def changed_rows(before: pa.Table, after: pa.Table) -> int:
    """How many rows' cost columns differ between two versions of one table (missing = changed)."""
    if any(before.schema.get_field_index(name) < 0 for name, _ in _OUTPUTS):
        return after.num_rows
    differs = None
    for name, _ in _OUTPUTS:
        old, new = before[name], after[name]
        column = pc.fill_null(pc.not_equal(old, new), True)
        both_null = pc.and_(pc.is_null(old), pc.is_null(new))
        column = pc.and_not(column, both_null)
        differs = column if differs is None else pc.or_(differs, column)
    return pc.sum(differs).as_py() or 0
