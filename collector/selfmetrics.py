"""The collector's own counters, for the periodic log line (and later a /metrics endpoint)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class Counters:
    requests: int = 0
    received_spans: int = 0
    rejected_spans: int = 0
    refused_requests: int = 0  # answered with a retryable error (overload, disk)
    stored_spans: int = 0
    stored_llm_calls: int = 0
    queue_bytes: int = 0
    flushes: int = 0
    flush_errors: int = 0
    last_flush_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def log_line(self, extra: dict[str, float] | None = None) -> str:
        values = self.snapshot() | (extra or {})
        return " ".join(f"{k}={round(v, 1) if isinstance(v, float) else v}" for k, v in values.items())
