"""Alert rules: config parsing, every metric firing and not firing, `vigil check` exit codes, webhooks.

The store has two services over real Parquet: `bad-bot` is slow, failing, refusing, expensive and
changed the shape of its answers in the last hour; `good-bot` does none of it. A rule grouped by
service must fire for the first and not for the second.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from store.alerts import METRICS, evaluate_alerts
from store.catalog import connect
from store.config import AlertRule, ConfigError, load_config
from tests.quality_store import call, write_calls, write_spans

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "sample_data" / "config.example.toml"
BAD = {
    "duration_ms": 5000.0,  # task and call latency
    "errors": 0.25,
    "refused": 0.3,
    "validation_fail": 0.5,
    "cost": 0.10,
    "success": 0.5,
    "tools": 6,
    "signature": "json:{answer:{text:str}}",  # the baseline says json:{answer:str}
    "length": 600,  # the baseline's 200
}
GOOD = {"duration_ms": 200.0, "errors": 0.0, "refused": 0.0, "validation_fail": 0.0, "cost": 0.01, "success": 1.0}
GOOD |= {"tools": 1, "signature": "json:{answer:str}", "length": 200}


def _service(root: Path, service: str, profile: dict, first: int, tasks: int = 40) -> None:
    spans, calls = [], []
    for i in range(tasks):
        n = first + i
        for current in (False, True):  # one task in the last hour, one in the day before it
            k = n * 2 + current
            start = NOW - timedelta(minutes=5 + i) if current else NOW - timedelta(hours=3, minutes=i * 10)
            fails = i < tasks * (1 - profile["success"])
            trace, root_id = f"{k:032x}", f"{k:016x}"
            attrs = json.dumps({"task.outcome": "failure" if fails else "success"})
            spans.append(
                {
                    "trace_id": trace,
                    "span_id": root_id,
                    "name": "answer",
                    "service_name": service,
                    "start_time": start,
                    "end_time": start + timedelta(milliseconds=profile["duration_ms"]),
                    "duration_ms": profile["duration_ms"],
                    "attributes": attrs,
                }
            )
            for t in range(profile["tools"]):
                spans.append(
                    {
                        "trace_id": trace,
                        "span_id": f"{k:012x}{t:04x}",
                        "parent_span_id": root_id,
                        "name": "tool",
                        "genai_kind": "tool",
                        "service_name": service,
                        "start_time": start,
                        "duration_ms": 1.0,
                    }
                )
            changed = current and profile is BAD
            calls.append(
                call(
                    k,
                    start,
                    profile["signature"] if changed else GOOD["signature"],
                    span_id=f"{k:012x}ffff",
                    parent_span_id=root_id,
                    service_name=service,
                    request_model="gpt-4o",
                    duration_ms=profile["duration_ms"] * 0.8,
                    cost_usd=profile["cost"],
                    cost_source="table",
                    status="error" if i < tasks * profile["errors"] else "ok",
                    refused=i >= tasks * (1 - profile["refused"]),
                    refusal_rule="en.cannot_assist@1" if i >= tasks * (1 - profile["refused"]) else None,
                    validation_status="fail" if i < tasks * profile["validation_fail"] else "pass",
                    output_length=profile["length"] if changed else GOOD["length"],
                    output_keys=["answer"],
                )
            )
    write_spans(root, spans)
    write_calls(root, calls)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alerts") / "data"
    _service(root, "bad-bot", BAD, 0)
    _service(root, "good-bot", GOOD, 1000)
    return root


# metric, threshold, comparison: each must fire for bad-bot and not for good-bot over the last hour
CASES = [
    ("p99_latency_ms", 1000.0, "above"),
    ("llm_p99_latency_ms", 1000.0, "above"),
    ("error_rate", 0.1, "above"),
    ("refusal_rate", 0.1, "above"),
    ("validation_failure_rate", 0.2, "above"),
    ("drift_distance", 0.3, "above"),
    ("length_drift_psi", 0.25, "above"),
    ("cost_per_successful_task", 0.05, "above"),
    ("task_success_rate", 0.9, "below"),
    ("spend_per_day", 20.0, "above"),  # bad-bot: 40 calls * $0.10 in 1 h = $96/day; good-bot $9.60
    ("tool_calls_per_task", 3.0, "above"),
]


def test_cases_cover_every_metric() -> None:
    assert {case[0] for case in CASES} == set(METRICS)


def _config(tmp_path: Path, store: Path, rules: str, extra: str = "") -> Path:
    path = tmp_path / "vigil.toml"
    path.write_text(f'[store]\ndata_dir = "{store}"\n{extra}\n{rules}')
    return path


@pytest.mark.parametrize(("metric", "threshold", "comparison"), CASES)
def test_each_metric_fires_for_the_bad_group_only(
    tmp_path: Path, store: Path, metric: str, threshold: float, comparison: str
) -> None:
    rule = f'[[alerts]]\nname = "r"\nmetric = "{metric}"\nthreshold = {threshold}\ncomparison = "{comparison}"\n'
    rule += 'window = "1h"\nbaseline = "1d"\ngroup_by = "service"\nmin_samples = 20\n'
    config = load_config(_config(tmp_path, store, rule), env={})
    results = {r.group: r for r in evaluate_alerts(connect(store, config), config, NOW)}
    assert set(results) == {"bad-bot", "good-bot"}
    bad, good = results["bad-bot"], results["good-bot"]
    assert (bad.status, bad.firing) == ("firing", True), bad
    assert (good.status, good.firing) == ("ok", False), good
    assert bad.samples >= 20 and bad.value is not None and bad.since == NOW - timedelta(hours=1)


def test_too_few_samples_or_no_data_never_fires(tmp_path: Path, store: Path) -> None:
    rules = (
        '[[alerts]]\nname = "picky"\nmetric = "error_rate"\nthreshold = 0.0\nmin_samples = 1000\n'
        '[[alerts]]\nname = "drift"\nmetric = "drift_distance"\nthreshold = 0.0\nmin_samples = 1000\n'
        '[[alerts]]\nname = "quiet"\nmetric = "error_rate"\nthreshold = 0.0\nwindow = "30m"\n'
    )
    config = load_config(_config(tmp_path, store, rules), env={})
    results = evaluate_alerts(connect(store, config), config, NOW + timedelta(days=30))  # nothing that recent
    assert [(r.rule, r.status, r.firing) for r in results] == [
        ("picky", "no_data", False),
        ("drift", "no_data", False),
        ("quiet", "no_data", False),
    ]
    judged = evaluate_alerts(connect(store, config), config, NOW)
    assert {(r.rule, r.status) for r in judged if r.rule != "quiet"} == {
        ("picky", "insufficient_data"),
        ("drift", "insufficient_data"),
    }


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('name = "x"\nmetric = "error_rate"\nthreshold = 1\nwindw = "1h"', "unknown setting [[alerts]] #1 (x).windw"),
        ('name = "x"\nmetric = "eror_rate"\nthreshold = 1', "unknown metric 'eror_rate'"),
        ('name = "x"\nmetric = "error_rate"', "missing threshold"),
        ('name = "x"\nmetric = "error_rate"\nthreshold = "high"', "threshold must be a number"),
        ('name = "x"\nmetric = "error_rate"\nthreshold = 1\ncomparison = "over"', "comparison must be 'above'"),
        ('name = "x"\nmetric = "error_rate"\nthreshold = 1\nwindow = "1 hour"', "use a duration like 30m"),
        ('name = "x"\nmetric = "error_rate"\nthreshold = 1\ngroup_by = "colour"', "cannot group by 'colour'"),
    ],
)
def test_bad_rules_say_what_to_fix(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "vigil.toml"
    path.write_text(f"[[alerts]]\n{rule}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, env={})


def test_rules_are_file_only_and_names_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only as \\[\\[alerts\\]\\]"):
        load_config(env={"VIGIL_ALERTS_NAME": "x"})
    path = tmp_path / "vigil.toml"
    path.write_text('[[alerts]]\nname = "x"\nmetric = "error_rate"\nthreshold = 1\n' * 2)
    with pytest.raises(ConfigError, match="two rules have this name"):
        load_config(path, env={})
    path.write_text("alerts = 3\n")
    with pytest.raises(ConfigError, match="list of tables"):
        load_config(path, env={})


def test_example_rules_parse_and_document_every_key(tmp_path: Path) -> None:
    """The commented [[alerts]] examples in config.example.toml load, and every rule key is explained."""
    text = EXAMPLE.read_text()
    block = text[text.index("# [[alerts]]") :]
    path = tmp_path / "rules.toml"
    path.write_text("\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines()))
    config = load_config(path, env={})
    assert [rule.metric for rule in config.alerts] == ["refusal_rate", "drift_distance", "spend_per_day"]
    for field in dataclasses.fields(AlertRule):
        assert re.search(rf"^#   {field.name} ", text, re.M), f"rule key {field.name} is not explained"
    for name in METRICS:
        assert name in text, f"metric {name} is not listed in config.example.toml"


def _check(config: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vigil", "check", "--config", str(config), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_vigil_check_exit_codes(tmp_path: Path, store: Path) -> None:
    fires = '[[alerts]]\nname = "slow"\nmetric = "p99_latency_ms"\nthreshold = 1000\ngroup_by = "service"\n'
    calm = '[[alerts]]\nname = "calm"\nmetric = "error_rate"\nthreshold = 0.9\n'
    now = ("--now", NOW.isoformat())
    out = _check(_config(tmp_path, store, fires + calm), *now)
    assert out.returncode == 1, out.stderr
    assert "FIRING" in out.stdout and "bad-bot" in out.stdout and "1 of 3" in out.stdout
    out = _check(_config(tmp_path, store, calm), *now, "--format", "json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["firing"] == 0 and report["results"][0]["status"] == "ok"
    assert report["results"][0]["value"] == pytest.approx(10 / 80)  # 10 failed calls of 80 in the last hour
    out = _check(_config(tmp_path, store, calm.replace("threshold", "treshold")), *now)
    assert out.returncode == 2 and "missing threshold" in out.stderr
    assert _check(_config(tmp_path, store, ""), *now).returncode == 2  # no rules: say so, exit 2
    assert _check(_config(tmp_path, store, calm), "--now", "yesterday").returncode == 2


class _Hooks(BaseHTTPRequestHandler):
    received: list[dict] = []
    answer = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hooks():
    _Hooks.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_gets_the_firing_results(tmp_path: Path, store: Path, hooks: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{hooks.server_address[1]}"
    rules = (
        '[[alerts]]\nname = "slow"\nmetric = "p99_latency_ms"\nthreshold = 1000\ngroup_by = "service"\n'
        f'webhook = "{url}/rule"\n'
        '[[alerts]]\nname = "tools"\nmetric = "tool_calls_per_task"\nthreshold = 3\ngroup_by = "service"\n'
        '[[alerts]]\nname = "calm"\nmetric = "error_rate"\nthreshold = 0.9\n'
    )
    extra = f'[alerting]\nwebhook_url = "{url}/global"\nwebhook_retries = 0\n'
    out = _check(_config(tmp_path, store, rules, extra), "--now", NOW.isoformat())
    assert out.returncode == 1, out.stderr
    by_path = {hook["path"]: hook for hook in _Hooks.received}
    assert set(by_path) == {"/rule", "/global"}  # the calm rule sends nothing
    slow = by_path["/rule"]
    assert slow["type"] == "application/json"
    assert {k: slow["body"][k] for k in ("source", "rule", "metric", "comparison", "threshold", "window")} == {
        "source": "vigil",
        "rule": "slow",
        "metric": "p99_latency_ms",
        "comparison": "above",
        "threshold": 1000.0,
        "window": "1h",
    }
    [fired] = slow["body"]["firing"]
    assert (fired["group"], fired["value"], fired["status"], fired["samples"]) == ("bad-bot", 5000.0, "firing", 40)
    assert by_path["/global"]["body"]["firing"][0]["group"] == "bad-bot"


def test_a_failing_webhook_is_reported_not_fatal(tmp_path: Path, store: Path, hooks: ThreadingHTTPServer) -> None:
    _Hooks.answer = 503
    try:
        port = hooks.server_address[1]
        rules = '[[alerts]]\nname = "slow"\nmetric = "p99_latency_ms"\nthreshold = 1000\n'
        extra = (
            f'[alerting]\nwebhook_url = "http://127.0.0.1:{port}/down"\nwebhook_retries = 1\nwebhook_timeout_s = 2\n'
        )
        out = _check(_config(tmp_path, store, rules, extra), "--now", NOW.isoformat(), "--format", "json")
    finally:
        _Hooks.answer = 200
    assert out.returncode == 1  # the alert still fires and is printed
    assert len(_Hooks.received) == 2  # one try and one retry, then it gives up
    assert "webhook slow" in out.stderr and "HTTP 503" in out.stderr
    [delivery] = json.loads(out.stdout)["webhooks"]
    assert (delivery["delivered"], delivery["attempts"]) == (False, 2)


def test_every_metric_is_a_documented_named_query() -> None:
    from store.queries import load

    readme = (ROOT / "README.md").read_text()
    for name, metric in METRICS.items():
        header = " ".join(line for line in load(metric.query).splitlines() if line.startswith("--"))
        assert metric.column in header and metric.samples in header, f"{metric.query}.sql does not declare them"
        assert f"`{name}`" in readme and f"`{metric.query}.sql`" in readme, f"README does not list {name}"
