"""Property: whatever the prices, request sizes, answer sizes, budgets and concurrency, a run never
spends more than its ceilings — checked against the usage the server itself reported."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.pricing import Pricer
from tests.llm_server import ScriptedLLM
from tests.test_replay_run import make_store, replay


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    input_price=st.floats(0.01, 100.0),
    output_price=st.floats(0.01, 200.0),
    cases=st.integers(1, 6),
    question=st.integers(0, 400),
    max_tokens=st.integers(1, 400),
    budget_usd=st.floats(0.0, 0.02),
    budget_tokens=st.integers(0, 4000),
    concurrency=st.integers(1, 3),
    seed=st.integers(0, 10**6),
)
def test_spend_never_crosses_the_ceiling(
    input_price, output_price, cases, question, max_tokens, budget_usd, budget_tokens, concurrency, seed
) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        prices = Path(tmp) / "prices.toml"
        prices.write_text(
            f'[[model]]\nmatch = "prop-model"\ninput_per_mtok = {input_price}\noutput_per_mtok = {output_price}\n'
        )
        params = json.dumps({"max_tokens": max_tokens})
        make_store(root, n=cases, request_model="prop-model", response_model="prop-model", request_params=params)

        def prompt_tokens(body: dict) -> int:  # anywhere from 1 token per 4 bytes to 1 per byte
            size = len(json.dumps(body["messages"], ensure_ascii=False).encode())
            return max(1, size // rng.choice((1, 2, 3, 4)))

        def answer(body: dict) -> str:
            return " ".join(["word"] * rng.randint(0, 2 * max_tokens))

        with ScriptedLLM(answer=answer, prompt_tokens=prompt_tokens) as server:
            state = replay(
                root,
                server,
                pricer=Pricer(prices),
                budget_usd=budget_usd,
                budget_tokens=budget_tokens,
                concurrency=concurrency,
                default_max_tokens=max_tokens,
            )
        billed_tokens = sum(p + c for p, c in server.usage)
        billed_usd = sum(p * input_price / 1e6 + c * output_price / 1e6 for p, c in server.usage)
        assert billed_tokens <= budget_tokens
        assert billed_usd <= budget_usd * (1 + 1e-9)
        assert state["spent_usd"] <= budget_usd * (1 + 1e-9) and state["spent_tokens"] <= budget_tokens
        assert state["cases_ok"] + state["cases_skipped"] == cases
        assert state["status"] == ("completed" if state["cases_skipped"] == 0 else "budget_exhausted")
