"""The user's price file (TOML) → `OverridePrice` entries that win over the bundled table.

Comes in: the path in `[pricing] overrides_file`, for self-hosted and fine-tuned models, or
negotiated rates. Goes out: entries to match calls against (`find`). Must not: accept a file it
half understands: an unknown key, a missing price or a bad date is a `ConfigError` naming the
entry, so a typo never silently leaves calls unpriced or priced at zero. The format, with every
key explained, is in `sample_data/prices.example.toml`.

Which entry prices a call: those whose `match` (exact or glob, case-insensitive) fits the model
and whose `provider`, if given, is the call's; of these, the one with the latest `valid_from`
not after the call's UTC date (an entry without one counts as valid forever), the first in the
file on a tie. So several entries with one `match` and different dates form a price history.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from store.config import ConfigError
from store.price_table import Rate, Rates, flat

_PRICE_KEYS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "reasoning_per_mtok",
)
_KEYS = frozenset(("match", "provider", "valid_from", "per_call_usd", *_PRICE_KEYS))


@dataclass(frozen=True, slots=True)
class OverridePrice:
    match: str  # lowercased glob
    provider: str | None  # lowercased; None: any provider
    rates: Rates
    valid_from: date | None
    order: int  # position in the file, for ties

    @property
    def label(self) -> str:
        return f"override:{self.match}" + (f"@{self.valid_from.isoformat()}" if self.valid_from else "")


def load_overrides(path: str | Path) -> list[OverridePrice]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"price file {path} not found; fix [pricing] overrides_file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"price file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"model"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; prices go in [[model]] entries")
    entries = data.get("model", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: write each price as a [[model]] entry")
    return [_entry(raw, f"{path}: [[model]] #{number}", number) for number, raw in enumerate(entries, 1)]


def _entry(raw: Any, where: str, order: int) -> OverridePrice:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}")
    match = raw.get("match")
    if not isinstance(match, str) or not match.strip():
        raise ConfigError(f'{where}: match = "model name or glob" is required')
    provider = raw.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise ConfigError(f"{where}: provider must be a provider name, e.g. vllm")
    prices = {key: _amount(raw.get(key), f"{where}: {key}") for key in _PRICE_KEYS}
    for key in _PRICE_KEYS[:2]:  # an omitted output price would bill output tokens at zero
        if prices[key] is None:
            raise ConfigError(f"{where} ({match}): {key} is required (USD per million tokens; 0 if free)")
    rates = Rates(
        input=flat(prices["input_per_mtok"]),
        output=flat(prices["output_per_mtok"]),
        cache_read=_flat_or_none(prices["cached_input_per_mtok"]),
        cache_write=_flat_or_none(prices["cache_write_per_mtok"]),
        reasoning=_flat_or_none(prices["reasoning_per_mtok"]),
        per_call=_amount(raw.get("per_call_usd"), f"{where}: per_call_usd") or 0.0,
    )
    valid_from = _date(raw.get("valid_from"), f"{where}: valid_from")
    provider = provider.strip().lower() if provider else None
    return OverridePrice(match.strip().lower(), provider, rates, valid_from, order)


def _amount(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a number >= 0 (USD), got {value!r}")
    return float(value)


def _flat_or_none(price: float | None) -> Rate | None:
    return None if price is None else flat(price)


def _date(value: Any, where: str) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be a date like 2026-01-01, got {value!r}") from None


class Overrides:
    """The entries of one price file, matched with a cache (a handful of models, millions of calls)."""

    def __init__(self, entries: list[OverridePrice], cache_size: int = 4096) -> None:
        self.entries = entries
        self._candidates = functools.lru_cache(maxsize=cache_size)(self._candidates_uncached)

    def find(self, provider: str | None, model: str, start_time_ns: int | None) -> OverridePrice | None:
        candidates = self._candidates(provider, model.lower())
        if not candidates:
            return None
        if candidates[0].valid_from is None:  # sorted newest first: no dates at all, no date needed
            return candidates[0]
        seconds = datetime.now(UTC).timestamp() if start_time_ns is None else start_time_ns / 1e9
        day = datetime.fromtimestamp(seconds, UTC).date()
        for entry in candidates:
            if entry.valid_from is None or entry.valid_from <= day:
                return entry
        return None

    def dated(self, provider: str | None, model: str) -> bool:
        """True when which entry applies depends on the call's date."""
        return any(entry.valid_from is not None for entry in self._candidates(provider, model.lower()))

    def _candidates_uncached(self, provider: str | None, model: str) -> tuple[OverridePrice, ...]:
        found = [
            entry
            for entry in self.entries
            if fnmatch.fnmatchcase(model, entry.match) and (entry.provider is None or entry.provider == provider)
        ]
        # Latest valid_from first (undated last: it is the oldest), file order on ties.
        found.sort(key=lambda e: (e.valid_from is None, -(e.valid_from or date.min).toordinal(), e.order))
        return tuple(found)
