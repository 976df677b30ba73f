"""Per-call cost of the quality signals computed at ingest: µs per call, printed, never asserted.

Each function runs over the outputs of the bundled refusal evaluation set (381 outputs, mostly
20–400 characters) plus a few larger JSON and markdown outputs, repeated; the figure is the mean
over every call. `quality_columns` is what the normalizer adds per LLM call (refusal + hedging +
signature + validation); `normalize_llm_call` is the whole normalizer for comparison, on a
1 KiB-completion span with and without the quality step.

    uv run python -m bench.quality [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import collector.normalize as normalize
from collector.normalize import SpanFacts, normalize_llm_call
from store.quality import quality_columns
from store.quality.evaluate import load_eval_set
from store.quality.refusal import detect_hedging, detect_refusal
from store.quality.signature import output_signature
from store.quality.validation import validate_output

SCHEMA = {"type": "object", "properties": {"items": {"type": "array"}, "total": {"type": "number"}}}
PARAMS = {"response_format": {"type": "json_schema", "json_schema": {"name": "order", "schema": SCHEMA}}}


def _outputs() -> list[str]:
    texts = [row["text"] for row in load_eval_set()]
    order = {"items": [{"sku": f"SKU-{i}", "qty": i, "price": i * 1.5} for i in range(30)], "total": 697.5}
    texts.append(json.dumps(order))
    texts.append("# Report\n\n" + "\n".join(f"- point {i}: " + "word " * 12 for i in range(40)))
    return texts


def _time(fn: Callable[[Any], Any], items: list[Any], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            fn(item)
    return (time.perf_counter() - start) / (repeat * len(items)) * 1e6


def _span_attrs() -> dict[str, Any]:
    completion = "The answer depends on the configuration. " * 25  # ~1 KiB
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 250,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Why?"}]}]),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": completion}], "finish_reason": "stop"}]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the outputs (default 20)")
    args = parser.parse_args()
    texts = _outputs()
    json_texts = [t for t in texts if t[:1] in "{["]
    figures = {
        "detect_refusal": _time(detect_refusal, texts, args.repeat),
        "detect_hedging": _time(detect_hedging, texts, args.repeat),
        "output_signature": _time(output_signature, texts, args.repeat),
        "validate_output (json_schema asked)": _time(lambda t: validate_output(t, PARAMS), json_texts, args.repeat * 5),
        "quality_columns (all of the above)": _time(
            lambda t: quality_columns(t, request_params=PARAMS), texts, args.repeat
        ),
    }
    span, facts = _span_attrs(), SpanFacts("chat gpt-4o-mini", "client", "ok", "", "bench")
    figures["normalize_llm_call, 1 KiB completion"] = _time(lambda a: normalize_llm_call(a, facts), [span], 2000)
    assess = normalize.assess_call
    normalize.assess_call = lambda *args, **kwargs: {}
    try:
        figures["normalize_llm_call without quality"] = _time(lambda a: normalize_llm_call(a, facts), [span], 2000)
    finally:
        normalize.assess_call = assess
    load = os.getloadavg()[0]
    print(
        f"{len(texts)} outputs ({len(json_texts)} JSON), {args.repeat} passes, "
        f"load average {load:.1f} on {os.cpu_count()} CPUs (figures grow with it)"
    )
    for name, micros in figures.items():
        print(f"{name:<42} {micros:8.1f} µs/call")


if __name__ == "__main__":
    main()
