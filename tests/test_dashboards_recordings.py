"""Every dashboard page over a store filled the way users fill it: the six real instrumentation recordings in
../shared/otlp-recordings (traces, GenAI log events and metrics) sent through the real collector over OTLP/gRPC.
The hand-built store of test_dashboards pins exact numbers; this one checks that what real SDKs send renders on
every page, with the page's numbers equal to the named queries and the conversation of a call whose content
arrived only as log events shown on the Traces page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from streamlit.testing.v1 import AppTest

from collector.server import Collector
from dashboards.kpis import format_usd
from store.catalog import connect
from store.queries import run
from tests.conftest import RECORDINGS, make_config, query, wait_for
from tests.otlp_json import load_recording
from tests.test_dashboards import APP, PAGES

EXPORT = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
RECORDED = sorted(RECORDINGS.glob("*.jsonl"))
TASKS_PER_RECORDING = 8  # every setup ran the same eight agent tasks (see test_recordings)


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("recorded") / "data"
    with Collector(make_config(root)) as collector, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as chan:
        for path in RECORDED:
            for signal, request in load_recording(path):
                export = chan.unary_unary(EXPORT[signal], request_serializer=lambda m: m.SerializeToString())
                export(request, timeout=10)
        expected = TASKS_PER_RECORDING * len(RECORDED)
        count = "SELECT count(*) AS n FROM tasks"
        assert wait_for(lambda: query(root, count)[0]["n"], lambda n: n >= expected, timeout_s=30) == expected
    yield root


@pytest.fixture
def recorded(recorded_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIGIL_STORE_DATA_DIR", str(recorded_store))
    monkeypatch.delenv("VIGIL_CONFIG", raising=False)
    return recorded_store


def _page(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (params or {"range": "all"}).items():
        at.query_params[key] = value
    at.run()
    if page != "app_pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_what_real_sdks_sent(recorded: Path, page: str) -> None:
    at = _page(page)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has its title"
    if page not in ("app_pages/replay.py", "app_pages/traces.py"):  # no replay ran; no trace is open yet
        assert at.get("plotly_chart"), f"{page} draws no chart over the recorded data"


def test_overview_numbers_are_the_named_queries(recorded: Path) -> None:
    tiles = {metric.label: metric.value for metric in _page("app_pages/overview.py").metric}
    summary = run(connect(recorded), "cost_per_successful_task").to_pylist()[0]
    assert tiles["Tasks"] == str(summary["tasks"]) == str(TASKS_PER_RECORDING * len(RECORDED))
    assert tiles["Total spend"] == format_usd(summary["total_cost_usd"])
    assert summary["total_cost_usd"] > 0, "the recorded OpenAI models are priced"
    assert tiles["Cost per successful task"] == format_usd(summary["cost_per_successful_task"]) != "$0.0000"


def test_a_call_whose_content_came_as_log_events_shows_its_conversation(recorded: Path) -> None:
    """openllmetry_events sends prompts and completions only as GenAI log events, not on the span."""
    row = query(
        recorded,
        """SELECT c.trace_id, m.text FROM llm_calls_raw c JOIN llm_messages m USING (trace_id, span_id)
           WHERE c.output_text IS NULL AND m.direction = 'output' AND m.text <> ''
           ORDER BY c.start_time LIMIT 1""",
    )[0]
    at = _page("app_pages/traces.py", range="all", trace=row["trace_id"])
    shown = "\n".join(str(element.value) for element in at.markdown)
    assert row["text"][:40] in shown
    assert at.get("plotly_chart"), "the span waterfall"
