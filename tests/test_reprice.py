"""End to end: OTel SDK spans → collector → priced llm_calls; then new prices → `vigil reprice` in place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.server import Collector
from store.catalog import connect
from store.config import Config, ConfigError, load_config
from store.pricing import Pricer
from store.queries import run
from store.reprice import reprice_store
from store.schema import LLM_CALLS_SCHEMA
from store.writer import write_file
from tests.conftest import query, wait_for

T0 = 1_790_000_000 * 10**9  # 2026-09-21
M = 1_000_000
# A self-hosted model the table cannot know, and a model nobody has a price for (yet).
PRICES_V1 = """
[[model]]
match = "my-llama-70b"
provider = "vllm"
input_per_mtok = 0.20
output_per_mtok = 0.60
"""
PRICES_V2 = """
[[model]]
match = "my-llama-70b"
provider = "vllm"
input_per_mtok = 0.40
output_per_mtok = 1.20

[[model]]
match = "mystery-*"
input_per_mtok = 1.0
output_per_mtok = 2.0
"""
CALLS = {
    # span name: (attributes, expected cost with PRICES_V1, source)
    "chat gpt-4o-mini": (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 2000,  # 1500 of them cached
            "gen_ai.usage.cache_read.input_tokens": 1500,
            "gen_ai.usage.output_tokens": 300,
        },
        (500 * 0.15 + 1500 * 0.075 + 300 * 0.60) / M,
        "table",
    ),
    "chat claude-sonnet-4": (
        {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-20250514",
            "gen_ai.usage.input_tokens": 10_000,  # 1000 uncached + 8000 read + 1000 written
            "gen_ai.usage.cache_read.input_tokens": 8000,
            "gen_ai.usage.cache_creation.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 200,
        },
        (1000 * 3 + 8000 * 0.30 + 1000 * 3.75 + 200 * 15) / M,
        "table",
    ),
    "chat my-llama-70b": (
        {
            "gen_ai.provider.name": "vllm",
            "gen_ai.request.model": "my-llama-70b",
            "gen_ai.usage.input_tokens": M,
            "gen_ai.usage.output_tokens": 100_000,
        },
        0.20 + 0.06,
        "override",
    ),
    "chat mystery": (
        {
            "gen_ai.provider.name": "whoknows",
            "gen_ai.request.model": "mystery-model-xyz",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
        },
        None,
        "unpriced",
    ),
    "chat reported": (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cost": 0.123,  # the SDK priced it itself (a discount the table cannot know)
        },
        0.123,
        "reported",
    ),
}


def _config(tmp_path: Path, prices: Path) -> tuple[Config, Path]:
    data_dir = tmp_path / "data"
    config_file = tmp_path / "vigil.toml"
    config_file.write_text(f"[pricing]\noverrides_file = '{prices}'\n")
    settings = {"grpc_listen": "127.0.0.1:0", "http_listen": "127.0.0.1:0", "flush_interval_s": 0.2}
    config = load_config(config_file, env={}, overrides={"store": {"data_dir": str(data_dir)}, "collector": settings})
    return config, config_file


def _costs(data_dir: Path) -> dict[str, tuple]:
    rows = query(data_dir, "SELECT span_name, cost_usd, cost_source, price_model FROM llm_calls")
    return {row["span_name"]: (row["cost_usd"], row["cost_source"], row["price_model"]) for row in rows}


def test_calls_are_priced_on_ingest_and_repriced_in_place(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES_V1)
    config, config_file = _config(tmp_path, prices)
    data_dir = Path(config.store.data_dir)
    with Collector(config) as collector:
        provider = TracerProvider(resource=Resource.create({"service.name": "pricing-test"}))
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("example.agent")
        for name, (attributes, _, _) in CALLS.items():
            span = tracer.start_span(name, attributes={"gen_ai.operation.name": "chat", **attributes}, start_time=T0)
            span.end(end_time=T0 + 10**9)
        provider.shutdown()
        costs = wait_for(lambda: _costs(data_dir), lambda found: len(found) == len(CALLS))
    for name, (_, cost, source) in CALLS.items():
        assert costs[name][:2] == (pytest.approx(cost), source), name
    assert costs["chat gpt-4o-mini"][2] == "openai:gpt-4o-mini"
    assert costs["chat my-llama-70b"][2] == "override:my-llama-70b"

    con = connect(data_dir)
    unpriced = run(con, "unpriced_share").to_pylist()
    assert [(r["model"], r["unpriced_calls"], r["calls"]) for r in unpriced] == [("mystery-model-xyz", 1, 1)]
    assert unpriced[0]["share_of_calls"] == pytest.approx(1 / 5)
    total_tokens = 2300 + 10_200 + 1_100_000 + 1500 + 110
    assert unpriced[0]["share_of_tokens"] == pytest.approx(1500 / total_tokens)

    # New prices: the self-hosted model got dearer, the mystery model got a price.
    files_before = sorted(p.relative_to(data_dir) for p in data_dir.glob("llm_calls/**/*") if p.is_file())
    prices.write_text(PRICES_V2)
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "reprice", "--data-dir", str(data_dir), "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "repriced 5 calls" in done.stdout and "2 changed" in done.stdout and "0 unpriced" in done.stdout
    assert re.search(r"repriced (\d+)/\1 files\n$", done.stderr), done.stderr  # progress reaches the end
    repriced = _costs(data_dir)
    assert repriced["chat my-llama-70b"][:2] == (pytest.approx(0.40 + 0.12), "override")
    assert repriced["chat mystery"] == (pytest.approx((1000 * 1.0 + 500 * 2.0) / M), "override", "override:mystery-*")
    for unchanged in ("chat gpt-4o-mini", "chat claude-sonnet-4", "chat reported"):
        assert repriced[unchanged] == costs[unchanged], unchanged
    # Rewritten in place: same files, no temporary left behind, no duplicate rows.
    files_after = sorted(p.relative_to(data_dir) for p in data_dir.glob("llm_calls/**/*") if p.is_file())
    assert files_after == files_before
    assert query(data_dir, "SELECT count(*) AS n FROM llm_calls_raw") == [{"n": len(CALLS)}]


def test_reprice_prices_files_stored_before_costs_existed(tmp_path: Path) -> None:
    """Files written by an older vigil lack the cost columns; reprice adds them."""
    old_schema = [f for f in LLM_CALLS_SCHEMA if f.name not in ("cost_usd", "cost_source", "price_model")]
    row = {f.name: None for f in old_schema} | {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "start_time": T0,
        "received_at": T0,
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": M,
        "output_tokens": 0,
    }
    folder = tmp_path / "llm_calls" / "date=2026-09-21"
    path = write_file(folder, pa.Table.from_pylist([row], pa.schema(old_schema)))
    seen = []
    summary = reprice_store(tmp_path, Pricer(), lambda done, total: seen.append((done, total)))
    assert (summary.files, summary.rewritten, summary.calls, summary.changed, summary.unpriced) == (1, 1, 1, 1, 0)
    assert seen == [(1, 1)]
    stored = pq.read_table(path, partitioning=None)
    assert stored["cost_usd"].to_pylist() == [pytest.approx(0.15)]
    assert stored["cost_source"].to_pylist() == ["table"]
    # Nothing changes the second time: the file is left alone.
    assert reprice_store(tmp_path, Pricer()).rewritten == 0


def test_collector_refuses_to_start_with_a_broken_price_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[model]]\nmatch = "x"\ninput_per_mtok = 1\n')
    config, _ = _config(tmp_path, prices)
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "reprice", "--data-dir", str(tmp_path), "--prices", str(prices)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "output_per_mtok is required" in done.stderr
    with pytest.raises(ConfigError, match="output_per_mtok"), Collector(config):
        pass
