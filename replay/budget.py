"""The run's hard ceiling: reserve each call's worst case before sending it, settle with what it cost.

Comes in: a request (its text and `max_tokens`), the price of its model, the ceilings in USD and
tokens. Goes out: a reservation or a refusal. Must not: let the spent plus reserved amount pass a
ceiling — so spent (settled) ≤ ceiling holds at every moment, as long as each call costs no more
than its reservation.

Worst case of one call: input tokens ≤ the UTF-8 bytes of the request's text (messages, tools,
parameters: byte-level BPE tokenizers never make more tokens than bytes) plus 8 tokens of chat
framing per message and 16 per request; output tokens ≤ `max_tokens`. A response whose usage
exceeds its reservation (a server that ignores `max_tokens`) is settled at its real cost and
stops the run at once, with the overrun reported.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

_PER_MESSAGE, _PER_REQUEST = 8, 16


@dataclass(frozen=True)
class Reservation:
    usd: float
    tokens: int
    input_tokens: int
    output_tokens: int


def worst_case_tokens(messages: list[dict[str, Any]], tools: Any, max_tokens: int) -> tuple[int, int]:
    text = json.dumps(messages, ensure_ascii=False) + (json.dumps(tools, ensure_ascii=False) if tools else "")
    return len(text.encode()) + _PER_MESSAGE * len(messages) + _PER_REQUEST, max_tokens


class Budget:
    """Thread-safe spend accounting; `spent_*` counts settled calls, `reserved_*` calls in flight."""

    def __init__(self, usd: float | None, tokens: int | None, spent_usd: float = 0.0, spent_tokens: int = 0):
        self.usd, self.tokens = usd, tokens
        self.spent_usd, self.spent_tokens = spent_usd, spent_tokens
        self.reserved_usd, self.reserved_tokens = 0.0, 0
        self.overrun = False
        self._lock = threading.Lock()

    def reserve(self, usd: float, input_tokens: int, output_tokens: int) -> Reservation | None:
        tokens = input_tokens + output_tokens
        with self._lock:
            if self.usd is not None and self.spent_usd + self.reserved_usd + usd > self.usd:
                return None
            if self.tokens is not None and self.spent_tokens + self.reserved_tokens + tokens > self.tokens:
                return None
            self.reserved_usd += usd
            self.reserved_tokens += tokens
            return Reservation(usd, tokens, input_tokens, output_tokens)

    def settle(self, reservation: Reservation, usd: float, tokens: int) -> None:
        """Replace the reservation by the actual cost (usd/tokens 0 for an attempt that was not billed)."""
        with self._lock:
            self.reserved_usd -= reservation.usd
            self.reserved_tokens -= reservation.tokens
            self.spent_usd += usd
            self.spent_tokens += tokens
            if usd > reservation.usd + 1e-12 or tokens > reservation.tokens:
                self.overrun = True

    def fits_alone(self, usd: float, tokens: int) -> bool:
        """Whether a call of this worst case could ever start, once nothing else is in flight."""
        with self._lock:
            usd_ok = self.usd is None or self.spent_usd + usd <= self.usd
            return usd_ok and (self.tokens is None or self.spent_tokens + tokens <= self.tokens)

    @property
    def in_flight(self) -> bool:
        with self._lock:
            return self.reserved_tokens > 0
