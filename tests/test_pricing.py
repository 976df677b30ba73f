"""Cost of an LLM call: published rates, cache and tier rules, price history, overrides, reported costs."""

from __future__ import annotations

import math
import socket
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from genai_prices import Usage, update_prices
from genai_prices.data import providers as table_providers
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.conventions.cost import read_reported_cost
from collector.normalize import SpanFacts, normalize_llm_call
from collector.server import Collector
from store.config import ConfigError, load_config
from store.price_overrides import load_overrides
from store.price_table import PriceTable, cost_usd
from store.pricing import Price, Pricer, billable_tokens
from tests.conftest import make_config, query, wait_for

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_790_000_000 * 10**9  # 2026-09-21 13:33 UTC
M = 1_000_000


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


@pytest.fixture(scope="module")
def pricer() -> Pricer:
    return Pricer()


def test_openai_published_rates_with_cached_input(pricer: Pricer) -> None:
    # gpt-4o-mini: $0.15/M input, $0.60/M output, $0.075/M cached input. OpenAI counts cached
    # tokens inside input_tokens: 2000 input of which 1500 cached → 500 at $0.15, 1500 at $0.075.
    found = pricer.price("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 2000, 300, 1500, None, None, T0)
    assert found == Price(pytest.approx((500 * 0.15 + 1500 * 0.075 + 300 * 0.60) / M), "table", "openai:gpt-4o-mini")
    assert found.cost_usd == pytest.approx(0.0003675)
    assert pricer.price("openai", "gpt-4o-mini", None, M, M, start_time_ns=T0).cost_usd == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("claude-3-5-sonnet-20241022", "anthropic:claude-3-5-sonnet"),
        ("claude-3-7-sonnet-20250219", "anthropic:claude-3-7-sonnet-latest"),
        ("claude-sonnet-4-20250514", "anthropic:claude-sonnet-4-0"),
    ],
)
def test_anthropic_published_rates_with_cache_reads_and_writes(pricer: Pricer, model: str, entry: str) -> None:
    # $3/M input, $15/M output, $0.30/M cache read, $3.75/M cache write (5 minutes).
    # Semconv-style count: input_tokens = 1000 uncached + 8000 read + 1000 written.
    found = pricer.price("anthropic", model, None, 10_000, 200, 8000, 1000, None, T0)
    expected = (1000 * 3 + 8000 * 0.30 + 1000 * 3.75 + 200 * 15) / M
    assert found == Price(pytest.approx(expected), "table", entry)
    assert found.cost_usd == pytest.approx(0.01215)
    # Anthropic's own API numbers (input excludes the cache) show themselves: the parts exceed the whole.
    exclusive = pricer.price("anthropic", model, None, 3, 100, 7166, 2175, None, T0)
    assert exclusive.cost_usd == pytest.approx((3 * 3 + 7166 * 0.30 + 2175 * 3.75 + 100 * 15) / M)


def test_bedrock_and_vertex_spellings_find_the_vendor_price(pricer: Pricer) -> None:
    bedrock = pricer.price("aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", None, M, 0, start_time_ns=T0)
    assert (bedrock.cost_usd, bedrock.cost_source) == (pytest.approx(3.0), "table")
    assert bedrock.price_model.startswith("aws:")
    azure = pricer.price("az.ai.openai", "gpt-4o-mini", None, M, 0, start_time_ns=T0)
    assert azure.cost_usd == pytest.approx(0.15)


def test_reasoning_tokens_are_output_tokens(pricer: Pricer) -> None:
    # o3-mini: $1.10/M in, $4.40/M out. OpenAI's 500 output tokens include the 400 reasoning ones.
    inclusive = pricer.price("openai", "o3-mini", None, 1000, 500, None, None, 400, T0)
    assert inclusive.cost_usd == pytest.approx((1000 * 1.10 + 500 * 4.40) / M)
    # Reasoning counted apart from output (more reasoning than output): billed on top.
    apart = pricer.price("openai", "o3-mini", None, 1000, 100, None, None, 400, T0)
    assert apart.cost_usd == pytest.approx((1000 * 1.10 + 500 * 4.40) / M)
    assert billable_tokens(1000, 100, None, None, 400) == (1000, 500, 0, 0, 400)


def test_tiered_price_applies_to_every_token_past_the_threshold(pricer: Pricer) -> None:
    # gemini-2.5-pro: $1.25/M in and $10/M out up to 200k input tokens; $2.50 and $15 above.
    at_threshold = pricer.price("gcp.vertex_ai", "gemini-2.5-pro", None, 200_000, 1000, start_time_ns=T0)
    assert at_threshold.cost_usd == pytest.approx((200_000 * 1.25 + 1000 * 10) / M)
    above = pricer.price("gcp.vertex_ai", "gemini-2.5-pro", None, 200_001, 1000, start_time_ns=T0)
    assert above.cost_usd == pytest.approx((200_001 * 2.50 + 1000 * 15) / M)
    # Cached input counts toward the threshold (it is part of the prompt) and has its own tier.
    cached = pricer.price("google", "gemini-2.5-pro", None, 300_000, 0, 100_000, None, None, T0)
    assert cached.cost_usd == pytest.approx((200_000 * 2.50 + 100_000 * 0.25) / M)


def test_price_in_force_at_the_calls_time(pricer: Pricer) -> None:
    # mistral-medium-latest went from $0.40/$2 to $1.50/$7.50 per M on 2026-06-16.
    before = pricer.price("mistral_ai", "mistral-medium-latest", None, M, M, start_time_ns=_ns("2026-06-15T23:59:59"))
    after = pricer.price("mistral_ai", "mistral-medium-latest", None, M, M, start_time_ns=_ns("2026-06-16T00:00:00"))
    assert (before.cost_usd, after.cost_usd) == (pytest.approx(2.40), pytest.approx(9.0))
    # deepseek-chat: peak $0.27/$1.10 between 00:30 and 16:30 UTC, off-peak $0.135/$0.55.
    peak = pricer.price("deepseek", "deepseek-chat", None, M, M, start_time_ns=_ns("2026-09-21T12:00:00"))
    off_peak = pricer.price("deepseek", "deepseek-chat", None, M, M, start_time_ns=_ns("2026-09-21T20:00:00"))
    assert (peak.cost_usd, off_peak.cost_usd) == (pytest.approx(1.37), pytest.approx(0.685))


def test_unknown_model_is_unpriced_never_zero(pricer: Pricer) -> None:
    assert pricer.price("whoknows", "made-up-model-xyz", None, 1000, 100, start_time_ns=T0) == Price(
        None, "unpriced", None
    )
    assert pricer.price("openai", None, None, 1000, 100) == Price(None, "unpriced", None)
    # A self-hosted runtime is never priced at a cloud list price that happens to share the name.
    assert pricer.price("ollama", "deepseek-chat", None, 1000, 100).cost_source == "unpriced"
    # A successful call whose usage could not be read: its cost is unknown, not zero...
    assert pricer.price("openai", "gpt-4o-mini", None, None, None, status="ok").cost_usd is None
    # ...while a call that failed before the provider answered was not billed.
    failed = pricer.price("openai", "gpt-4o-mini", None, None, None, status="error")
    assert (failed.cost_usd, failed.cost_source) == (0.0, "table")


def test_reported_cost_wins_over_the_estimate(pricer: Pricer) -> None:
    assert pricer.price("openai", "gpt-4o-mini", None, M, 0, reported_cost=0.5) == Price(0.5, "reported", None)
    # Several SDKs report 0 for "don't know": the table is asked first, and 0 stands only without a price.
    assert pricer.price("openai", "gpt-4o-mini", None, M, 0, reported_cost=0.0).cost_source == "table"
    assert pricer.price("vllm", "mine", None, M, 0, reported_cost=0.0) == Price(0.0, "reported", None)


@pytest.mark.parametrize(
    ("attrs", "cost"),
    [
        ({"gen_ai.usage.cost": 0.25}, 0.25),
        ({"llm.cost.total": "0.5"}, 0.5),  # OpenInference
        ({"operation.cost": 0.125}, 0.125),  # pydantic-ai / Logfire
        ({"langfuse.observation.cost_details": '{"input": 0.1, "output": 0.2}'}, pytest.approx(0.3)),
        ({"langfuse.observation.cost_details": '{"input": 0.1, "total": 0.15}'}, 0.15),
        ({"gen_ai.usage.cost": -1}, None),
        ({"gen_ai.usage.cost": "n/a"}, None),
        ({}, None),
    ],
)
def test_reported_cost_is_read_from_every_convention(attrs: dict, cost: float | None) -> None:
    assert read_reported_cost(attrs) == cost
    call = normalize_llm_call(
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", **attrs},
        SpanFacts("chat gpt-4o", "client", "unset", "", "example"),
    )
    assert (call["cost_usd"], call["cost_source"]) == ((cost, "reported") if cost is not None else (None, None))


def _price_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


def test_override_file_prices_a_self_hosted_model(tmp_path: Path) -> None:
    path = _price_file(
        tmp_path,
        """
        [[model]]
        match = "my-llama-*"
        provider = "vllm"
        input_per_mtok = 0.2
        output_per_mtok = 0.6
        cached_input_per_mtok = 0.05

        [[model]]
        match = "my-llama-*"
        provider = "vllm"
        input_per_mtok = 0.1
        output_per_mtok = 0.3
        valid_from = 2026-10-01

        [[model]]
        match = "gpt-4o-mini"
        input_per_mtok = 0.1
        output_per_mtok = 0.4
        """,
    )
    pricer = Pricer(path)
    call = pricer.price("vllm", "My-Llama-70B", None, M, 100_000, 200_000, None, None, T0)
    expected = (800_000 * 0.2 + 200_000 * 0.05 + 100_000 * 0.6) / M
    assert call == Price(pytest.approx(expected), "override", "override:my-llama-*")
    # The later entry takes over from its valid_from on.
    later = pricer.price("vllm", "my-llama-70b", None, M, 0, start_time_ns=_ns("2026-10-01T00:00:00"))
    assert (later.cost_usd, later.price_model) == (pytest.approx(0.1), "override:my-llama-*@2026-10-01")
    # provider is a filter; and an override wins over the table, on the request model too.
    assert pricer.price("ollama", "my-llama-70b", None, M, 0).cost_source == "unpriced"
    table_beaten = pricer.price("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", M, M, start_time_ns=T0)
    assert (table_beaten.cost_usd, table_beaten.cost_source) == (pytest.approx(0.5), "override")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[model]]\nmatch = "x"\ninput_per_mtok = 1\n', "output_per_mtok is required"),
        ('[[model]]\nmatch = "x"\ninput_per_mtok = 1\noutput_per_mtok = 1\ninput_price = 2\n', "unknown key(s)"),
        ('[[model]]\nmatch = "x"\ninput_per_mtok = -1\noutput_per_mtok = 1\n', "must be a number >= 0"),
        ('[[model]]\nmatch = "x"\ninput_per_mtok = 1\noutput_per_mtok = 1\nvalid_from = "soon"\n', "valid_from"),
        ("[[model]]\ninput_per_mtok = 1\noutput_per_mtok = 1\n", "match"),
        ('[models]\nmatch = "x"\n', "unknown table"),
    ],
)
def test_a_bad_price_file_says_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="prices.toml") as error:
        Pricer(_price_file(tmp_path, text))
    assert message in str(error.value)


def test_missing_price_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Pricer(tmp_path / "nope.toml")


def test_example_price_file_loads() -> None:
    entries = load_overrides(ROOT / "sample_data" / "prices.example.toml")
    assert [e.match for e in entries] == ["my-llama-70b", "my-llama-70b", "ft:gpt-4o-mini-2024-07-18:*"]
    pricer = Pricer(ROOT / "sample_data" / "prices.example.toml")
    assert pricer.price("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", None, M, 0).cost_usd == pytest.approx(0.3)


def test_price_table_fills_a_batch_and_keeps_reported_costs(pricer: Pricer) -> None:
    calls = pa.table(
        {
            "provider": ["openai", "openai", "whoknows"],
            "request_model": ["gpt-4o-mini", "gpt-4o", "mystery"],
            "response_model": [None, None, None],
            "input_tokens": [M, 10, 10],
            "output_tokens": [0, 10, 10],
            "start_time": pa.array([T0, T0, T0], pa.timestamp("ns", tz="UTC")),
            "cost_usd": [None, 0.25, None],
            "cost_source": [None, "reported", None],
        }
    )
    priced = pricer.price_table(calls)
    assert priced["cost_usd"].to_pylist() == [pytest.approx(0.15), 0.25, None]
    assert priced["cost_source"].to_pylist() == ["table", "reported", "unpriced"]
    assert priced["price_model"].to_pylist() == ["openai:gpt-4o-mini", None, None]
    assert priced.num_rows == calls.num_rows


def test_fast_rates_agree_with_genai_prices_calc_price() -> None:
    """The float fast path gives genai-prices' own answer, for every token-priced model of the big vendors."""
    table = PriceTable()
    vendors = {"openai", "anthropic", "google", "aws", "azure", "mistral", "deepseek", "x-ai", "groq", "cohere"}
    usages = [(1000, 500, 200, 100, 50), (250_000, 2000, 10_000, 5000, 300), (7, 3, 0, 0, 0)]
    times = [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 20, 10, tzinfo=UTC),
        datetime(2026, 9, 21, 2, tzinfo=UTC),
    ]
    compared = 0
    for provider in (p for p in table_providers if p.id in vendors):
        for model in provider.models:
            for when in times:
                rates = table.rates(model, int(when.timestamp()) * 10**9)
                if rates is None:
                    continue
                for inputs, outputs, read, write, reasoning in usages:
                    usage = Usage(
                        input_tokens=inputs,
                        output_tokens=outputs,
                        cache_read_tokens=read,
                        cache_write_tokens=write,
                        output_reasoning_tokens=reasoning,
                    )
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        expected = model.calc_price(usage, provider, genai_request_timestamp=when).total_price
                    ours = cost_usd(rates, inputs, outputs, read, write, reasoning)
                    assert math.isclose(ours, float(expected), rel_tol=1e-9, abs_tol=1e-15), (provider.id, model.id)
                    compared += 1
    assert compared > 3000


def test_pricing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    pricer = Pricer()
    assert pricer.price("anthropic", "claude-sonnet-4-20250514", None, 1000, 10, start_time_ns=T0).cost_usd
    assert pricer.price("somebody", "unheard-of", None, 1000, 10).cost_source == "unpriced"
    assert update_prices._shared_updater.thread is None, "genai-prices' background price fetch must stay off"


def test_collector_decode_workers_price_with_the_users_price_file(tmp_path: Path) -> None:
    """Pricing runs in the decode worker processes: they must use the same price file as the collector."""
    data_dir = tmp_path / "data"
    base = make_config(data_dir)
    assert base.collector.decode_workers >= 1  # the worker-process path is the one under test
    prices = ROOT / "sample_data" / "prices.example.toml"
    settings = {name: getattr(base.collector, name) for name in ("http_listen", "grpc_listen", "flush_interval_s")}
    config = load_config(
        env={},
        overrides={
            "store": {"data_dir": str(data_dir)},
            "collector": settings | {"metrics_log_interval_s": 0, "decode_workers": 1},
            "pricing": {"overrides_file": str(prices)},
        },
    )
    with Collector(config) as collector:
        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{collector.grpc_port}", insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        for model in ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini"):
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": M,
                "gen_ai.usage.output_tokens": 0,
            }
            with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
                pass
        provider.shutdown()
        sql = "SELECT request_model, cost_usd, cost_source FROM llm_calls ORDER BY request_model"
        rows = wait_for(lambda: query(data_dir, sql), lambda found: len(found) == 2)
    assert rows == [
        {
            "request_model": "ft:gpt-4o-mini-2024-07-18:acme::abc123",
            "cost_usd": pytest.approx(0.3),
            "cost_source": "override",
        },
        {"request_model": "gpt-4o-mini", "cost_usd": pytest.approx(0.15), "cost_source": "table"},
    ]
