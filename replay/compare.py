"""Original vs replayed answer → one comparison row; many rows → run rates with confidence intervals.

Pure: no I/O. `compare_pair` takes the original call's answer and the candidate's and says whether
the structure signature was kept, whether a refusal was gained or lost, whether each passes the
validation the request asked for, the length ratio, a text similarity, and the cost and latency
deltas. `summarize_pairs` turns the rows of a run into rates, old vs new, each with an interval:
Wilson score intervals for proportions, a paired bootstrap (seeded) for the relative cost change,
and a Student-t interval for mean similarity.

Text similarity is difflib's `SequenceMatcher.ratio()` (2·matches / total characters, 0..1) over
the first 4,000 characters of each answer: cheap, deterministic, and 1.0 only for identical text.
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Sequence
from statistics import NormalDist, fmean, stdev
from typing import Any

from store.quality.refusal import Rules, detect_refusal
from store.quality.signature import output_signature
from store.quality.validation import requested_json, validate_output

_Z95 = NormalDist().inv_cdf(0.975)
_SIMILARITY_CHARS = 4000


def compare_pair(
    old: dict[str, Any], new: dict[str, Any], request_params: dict[str, Any] | None, rules: Rules | None = None
) -> dict[str, Any]:
    """`old`/`new`: text, tool_calls (list), finish_reasons (list), refusal (provider field), cost_usd, latency_ms.

    Both answers go through the same functions and refusal `rules` (the `[quality]` ones), so a change
    of rules since the original call was stored cannot pass for a change of behaviour."""
    old_sig = output_signature(old.get("text"), old.get("tool_calls") or None)
    new_sig = output_signature(new.get("text"), new.get("tool_calls") or None)
    old_refusal = _refusal(old, rules)
    new_refusal = _refusal(new, rules)
    old_validation, _ = _validation(old.get("text"), request_params)
    new_validation, new_error = _validation(new.get("text"), request_params)
    old_text, new_text = old.get("text") or "", new.get("text") or ""
    return {
        "old_signature": old_sig.signature,
        "new_signature": new_sig.signature,
        "signature_kept": old_sig.signature == new_sig.signature,
        "old_refusal_rule": old_refusal,
        "new_refusal_rule": new_refusal,
        "refusal_gained": old_refusal is None and new_refusal is not None,
        "refusal_lost": old_refusal is not None and new_refusal is None,
        "old_validation": old_validation,
        "new_validation": new_validation,
        "new_validation_error": new_error,
        "length_ratio": len(new_text) / len(old_text) if old_text else None,
        "similarity": text_similarity(old_text, new_text),
        "cost_delta_usd": _delta(new.get("cost_usd"), old.get("cost_usd")),
        "latency_delta_ms": _delta(new.get("latency_ms"), old.get("latency_ms")),
    }


def text_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a[:_SIMILARITY_CHARS], b[:_SIMILARITY_CHARS], autojunk=False).ratio()


def _refusal(answer: dict[str, Any], rules: Rules | None) -> str | None:
    return detect_refusal(
        answer.get("text") or "",
        finish_reasons=tuple(answer.get("finish_reasons") or ()),
        provider_refusal=answer.get("refusal"),
        rules=rules,
    )


def _validation(text: str | None, params: dict[str, Any] | None) -> tuple[str | None, str | None]:
    if not requested_json(params)[0]:
        return None, None
    error = validate_output(text or "", params)
    return ("fail", error) if error else ("pass", None)


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


# -- per run -------------------------------------------------------------------------------------


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval of a proportion; (None, None) for n = 0."""
    if n == 0:
        return None, None
    p = successes / n
    denominator = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denominator
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(flags: Sequence[bool]) -> dict[str, Any]:
    n, k = len(flags), sum(bool(f) for f in flags)
    low, high = wilson(k, n)
    return {"n": n, "count": k, "rate": k / n if n else None, "low": low, "high": high}


def mean_t(values: Sequence[float]) -> dict[str, Any]:
    """Mean with a 95% Student-t interval (normal quantile from 30 values on; t for fewer)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = fmean(values)
    if n == 1:
        return {"n": 1, "mean": mean, "low": None, "high": None}
    half = _t95(n - 1) * stdev(values) / math.sqrt(n)
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half}


def _t95(df: int) -> float:
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    if df in table:
        return table[df]
    return _Z95 + 2.4 / df if df < 30 else _Z95  # close to the t quantile between 10 and 30 degrees of freedom


def relative_change(old: Sequence[float], new: Sequence[float], seed: int = 0, rounds: int = 1000) -> dict[str, Any]:
    """sum(new)/sum(old) - 1 over paired values, with a 95% paired bootstrap percentile interval."""
    n = len(old)
    if n == 0 or sum(old) <= 0:
        return {"n": n, "old": sum(old), "new": sum(new), "change": None, "low": None, "high": None}
    change = sum(new) / sum(old) - 1
    rng = random.Random(seed)
    draws = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        base = sum(old[i] for i in picks)
        if base > 0:
            draws.append(sum(new[i] for i in picks) / base - 1)
    draws.sort()
    low = draws[int(0.025 * (len(draws) - 1))] if draws else None
    high = draws[int(0.975 * (len(draws) - 1))] if draws else None
    return {"n": n, "old": sum(old), "new": sum(new), "change": change, "low": low, "high": high}


def summarize_pairs(rows: Sequence[dict[str, Any]], cases_total: int | None = None) -> dict[str, Any]:
    """Rates of one run from its result rows (status ok pairs compared; errors counted)."""
    ok = [r for r in rows if r["status"] == "ok"]
    errors = len(rows) - len(ok)
    validated = [r for r in ok if r["new_validation"] is not None or r["old_validation"] is not None]
    priced = [r for r in ok if r["old_cost_usd"] is not None and r["new_cost_usd"] is not None]
    timed = [r for r in ok if r["old_latency_ms"] is not None and r["new_latency_ms"] is not None]
    return {
        "cases_total": cases_total if cases_total is not None else len(rows),
        "results": len(rows),
        "pairs": len(ok),
        "errors": errors,
        "error_rate": rate([r["status"] != "ok" for r in rows]),
        "refusal_old": rate([r["old_refusal_rule"] is not None for r in ok]),
        "refusal_new": rate([r["new_refusal_rule"] is not None for r in ok]),
        "refusal_gained": sum(bool(r["refusal_gained"]) for r in ok),
        "refusal_lost": sum(bool(r["refusal_lost"]) for r in ok),
        "structure_match": rate([bool(r["signature_kept"]) for r in ok]),
        "validation_fail_old": rate([r["old_validation"] == "fail" for r in validated]),
        "validation_fail_new": rate([r["new_validation"] == "fail" for r in validated]),
        "similarity": mean_t([r["similarity"] for r in ok if r["similarity"] is not None]),
        "length_ratio": mean_t([r["length_ratio"] for r in ok if r["length_ratio"] is not None]),
        "cost": relative_change([r["old_cost_usd"] for r in priced], [r["new_cost_usd"] for r in priced]),
        "latency_ms_old": mean_t([r["old_latency_ms"] for r in timed]),
        "latency_ms_new": mean_t([r["new_latency_ms"] for r in timed]),
    }
