"""The collector's own counters, for the periodic log line and the /metrics endpoint."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict


class Counters:
    """Thread-safe named numbers: counters (`add`) and gauges (`set`)."""

    def __init__(self) -> None:
        self._values: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self._values[name] += delta

    def set(self, **values: float) -> None:
        with self._lock:
            self._values.update(values)

    def get(self, name: str) -> float:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(sorted(self._values.items()))

    def log_line(self, extra: dict[str, float] | None = None) -> str:
        values = self.snapshot() | (extra or {})
        return " ".join(
            f"{k}={round(v, 1) if isinstance(v, float) and not v.is_integer() else int(v)}" for k, v in values.items()
        )


GAUGES = frozenset({"queue_bytes", "buffered_bytes", "last_flush_ms", "wal_bytes"})


class Histogram:
    """Observations counted in fixed buckets, thread-safe: a Prometheus histogram."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # each bucket's upper bound (`le`), ascending; +Inf follows
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[int], float]:
        """(cumulative count per bound, +Inf last; sum of the observations)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        for index in range(1, len(counts)):
            counts[index] += counts[index - 1]
        return counts, total


def prometheus_text(values: dict[str, float], histograms: dict[str, Histogram] | None = None) -> str:
    """Prometheus text exposition format 0.0.4: counters get `_total`, gauges keep their name."""
    lines = []
    for name, value in sorted(values.items()):
        kind = "gauge" if name in GAUGES else "counter"
        metric = f"vigil_{name}" if kind == "gauge" else f"vigil_{name}_total"
        lines += [f"# TYPE {metric} {kind}", f"{metric} {value:g}"]
    for name, histogram in sorted((histograms or {}).items()):
        counts, total = histogram.snapshot()
        lines.append(f"# TYPE vigil_{name} histogram")
        for bound, count in zip([*map(str, histogram.bounds), "+Inf"], counts, strict=True):
            lines.append(f'vigil_{name}_bucket{{le="{bound}"}} {count}')
        lines += [f"vigil_{name}_sum {total:g}", f"vigil_{name}_count {counts[-1]}"]
    return "\n".join(lines) + "\n"
