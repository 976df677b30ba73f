"""Simulated model server benchmark: chat completions per second through the real `openai` client.

Starts SimulatedLLM in this process with no simulated delay (so the figure is the server's and the
client's own cost), sends `--requests` distinct support-style requests from `--concurrency`
threads, plain and streamed (with usage), and prints requests/s and latency percentiles. Prints
figures, asserts nothing.

    uv run python -m bench.sim_llm [--requests 500] [--concurrency 1 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from replay.simulator import SimulatedLLM

SYSTEM = "You are Acme's support assistant. Be brief and kind."


def _one(client: openai.OpenAI, i: int, stream: bool) -> float:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Where is my order #{i}?"}]
    started = time.perf_counter()
    if stream:
        for _ in client.chat.completions.create(
            model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
        ):
            pass
    else:
        client.chat.completions.create(model="gpt-4o", messages=messages)
    return time.perf_counter() - started


def run(requests: int, concurrency: int, stream: bool, base_url: str) -> dict[str, float]:
    client = openai.OpenAI(base_url=base_url, api_key="sim", max_retries=0)
    _one(client, -1, stream)  # warm the connection pool
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(lambda i: _one(client, i, stream), range(requests)))
    elapsed = time.perf_counter() - started
    return {
        "stream": stream,
        "concurrency": concurrency,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per run (default 500)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client threads (default 1 8)")
    parser.add_argument("--json", action="store_true", help="one JSON object per run instead of a table")
    args = parser.parse_args()
    with SimulatedLLM() as llm:
        rows = [run(args.requests, c, s, llm.base_url) for c in args.concurrency for s in (False, True)]
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
