"""Stored LLM calls for the replay tests, written through the real Parquet writer.

`write_calls(root, n)` stores `n` chat calls of prompt `support-answer` v1: a system message and
the user message the v1 template rendered from the call's variables (which carry `case-<i>` so
the scripted server can tell cases apart), the original answer, cost and latency.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow as pa

from store.location import Destination, append_rows
from store.schema import LLM_CALLS_SCHEMA

V1_TEMPLATE = "Answer the customer: {question}"
SYSTEM = "You are a support agent."


def call_row(i: int, **fields: Any) -> dict[str, Any]:
    variables = {"question": f"where is my order? (case-{i})"}
    template = fields.pop("prompt_template", V1_TEMPLATE)
    user = template.format(**variables)
    now = time.time_ns() - (1000 - i) * 1_000_000_000
    row = {
        "trace_id": f"{i:032x}",
        "span_id": f"{i:016x}",
        "start_time": now,
        "end_time": now + 800_000_000,
        "duration_ms": 800.0,
        "service_name": "support-bot",
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini",
        "input_tokens": 40,
        "output_tokens": 20,
        "cost_usd": 0.000018,
        "cost_source": "table",
        "input_messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                {"role": "user", "parts": [{"type": "text", "content": user}]},
            ]
        ),
        "output_text": f"Your order case-{i} ships tomorrow.",
        "finish_reasons": ["stop"],
        "request_params": json.dumps({"max_tokens": 100, "temperature": 0.2}),
        "status": "ok",
        "prompt_name": "support-answer",
        "prompt_version": "v1",
        "prompt_template": template,
        "prompt_variables": json.dumps(variables),
        "received_at": now,
    }
    return row | fields


def write_calls(root: Destination, n: int, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    rows = [call_row(i, **fields) for i in range(start, start + n)]
    append_rows(root, "llm_calls", pa.Table.from_pylist(rows, LLM_CALLS_SCHEMA), tag="test")
    return rows
