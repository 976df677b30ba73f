"""Output-structure drift in DuckDB: the math against a hand computation and scipy, and workloads.

Exact distributions are written as real Parquet through the store's writer; one workload goes through
the real OTel SDK exporter and the real collector, which computes the output signatures at ingest.
Every number comes from the named queries over real DuckDB.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from store.catalog import connect
from store.queries import run
from tests.conftest import query, wait_for
from tests.quality_store import call, write_calls

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MID = T0 + timedelta(days=1)
SIDES = {"baseline_since": T0, "baseline_until": MID, "current_since": MID, "current_until": MID + timedelta(days=1)}


def _at(i: int, side: str) -> datetime:
    return (T0 if side == "baseline" else MID) + timedelta(seconds=i)


def test_hand_computed_example(tmp_path: Path) -> None:
    # baseline: signatures A A B B, lengths 1 2 3 4; current: A B C C, lengths 2 4 8 8.
    rows = []
    for i, (sig, length) in enumerate(zip("AABB", (1, 2, 3, 4), strict=True)):
        rows.append(call(i, _at(i, "baseline"), sig, output_length=length))
    for i, (sig, length) in enumerate(zip("ABCC", (2, 4, 8, 8), strict=True)):
        rows.append(call(100 + i, _at(i, "current"), sig, output_length=length))
    write_calls(tmp_path, rows)
    con = connect(tmp_path)
    # Signatures: p = (A .5, B .5, C 0), q = (.25, .25, .5), m = (p + q) / 2 = (.375, .375, .25).
    # KL(p||m) = 2 * .5 * log2(.5/.375) = log2(4/3) = 0.415037
    # KL(q||m) = 2 * .25 * log2(.25/.375) + .5 * log2(.5/.25) = .5 * -0.584963 + .5 = 0.207519
    # JSD = (0.415037 + 0.207519) / 2 = 0.311278 bits; distance = sqrt(0.311278) = 0.557923
    # PSI = (.25-.5) ln(.25/.5) * 2 + (.5-.0001) ln(.5/.0001) = 2 * 0.173287 + 0.4999 * 8.517193 = 4.604318
    sig = run(con, "signature_drift", min_samples=4, **SIDES).to_pylist()[0]
    assert (sig["baseline_calls"], sig["current_calls"]) == (4, 4)
    assert (sig["baseline_signatures"], sig["current_signatures"]) == (2, 3)
    assert sig["js_divergence"] == pytest.approx(0.311278, abs=1e-6)
    assert sig["js_distance"] == pytest.approx(0.557923, abs=1e-6)
    assert sig["psi"] == pytest.approx(4.604318, abs=1e-6)
    assert sig["status"] == "drift"
    assert (sig["top_baseline_signature"] in "AB", sig["top_current_signature"]) == (True, "C")
    # Lengths in doubling buckets (1: [1], 2: [2,3], 3: [4..7], 4: [8..15]):
    # baseline (1, 2, 2, 3) → p = (.25, .5, .25, 0); current (2, 3, 4, 4) → q = (0, .25, .25, .5)
    # PSI = (.0001-.25) ln(.0001/.25) + (.25-.5) ln(.25/.5) + 0 + (.5-.0001) ln(.5/.0001)
    #     = 1.955229 + 0.173287 + 0 + 4.257745 = 6.386261
    # KS: F_b at 1,2,3,4,8 = .25 .5 .75 1 1; F_c = 0 .25 .25 .5 1; largest gap D = 0.5 (at 3 and 4)
    length = run(con, "length_drift", min_samples=4, **SIDES).to_pylist()[0]
    assert length["psi"] == pytest.approx(6.386261, abs=1e-6)
    assert length["ks_statistic"] == pytest.approx(0.5)
    assert (length["baseline_p50_length"], length["current_p50_length"]) == (2.5, 6.0)
    assert length["status"] == "drift"


def test_min_samples_gates_every_verdict(tmp_path: Path) -> None:
    """Below the minimum on either side: insufficient_data, whatever the distance (here the largest)."""
    rows = [call(i, _at(i, "baseline"), "A", output_length=10, output_keys=["a"]) for i in range(30)]
    rows += [call(100 + i, _at(i, "current"), "B", output_length=900, output_keys=["b"]) for i in range(5)]
    write_calls(tmp_path, rows)
    con = connect(tmp_path)
    for minimum, expected in ((6, "insufficient_data"), (5, "drift")):
        sig = run(con, "signature_drift", min_samples=minimum, **SIDES).to_pylist()[0]
        length = run(con, "length_drift", min_samples=minimum, **SIDES).to_pylist()[0]
        keys = run(con, "key_changes", min_samples=minimum, **SIDES).to_pylist()
        assert sig["js_distance"] == pytest.approx(1.0)
        assert (sig["status"], length["status"]) == (expected, expected)
        assert {k["status"] for k in keys} == {"insufficient_data" if minimum == 6 else "changed"}
    # a group seen on one side only is never judged either
    rows = [call(1000 + i, _at(i, "current"), "A", service_name="new") for i in range(60)]
    write_calls(tmp_path, rows)
    groups = {
        r["group"]: r["status"] for r in run(connect(tmp_path), "signature_drift", group="service", **SIDES).to_pylist()
    }
    assert groups["new"] == "insufficient_data"


def test_matches_scipy_on_random_data(tmp_path: Path) -> None:
    rnd = random.Random(7)
    signatures = [f"json:{{k{i}:str}}" for i in range(6)]
    expected: dict[str, tuple[list[int], list[int]]] = {}
    lengths: dict[str, tuple[list[int], list[int]]] = {}
    rows, n = [], 0
    for g in range(8):
        model = f"model-{g}"
        weights = ([rnd.random() for _ in signatures], [rnd.random() ** 2 for _ in signatures])
        counts, lens = ([0] * len(signatures), [0] * len(signatures)), ([], [])
        for side_index, side in enumerate(("baseline", "current")):
            for i in range(rnd.randint(60, 300)):
                k = rnd.choices(range(len(signatures)), weights=weights[side_index])[0]
                length = int(rnd.lognormvariate(5 + side_index * rnd.random(), 0.8))
                counts[side_index][k] += 1
                lens[side_index].append(length)
                rows.append(call(n, _at(i, side), signatures[k], output_length=length, request_model=model))
                n += 1
        expected[model], lengths[model] = counts, lens
    write_calls(tmp_path, rows)
    con = connect(tmp_path)
    sig = {r["group"]: r for r in run(con, "signature_drift", group="model", min_samples=1, **SIDES).to_pylist()}
    length = {r["group"]: r for r in run(con, "length_drift", group="model", min_samples=1, **SIDES).to_pylist()}
    for model, (b, c) in expected.items():
        assert sig[model]["js_distance"] == pytest.approx(jensenshannon(b, c, base=2), abs=1e-9)
        p, q = [x / sum(b) for x in b], [x / sum(c) for x in c]
        psi = sum(((y or 1e-4) - (x or 1e-4)) * math.log((y or 1e-4) / (x or 1e-4)) for x, y in zip(p, q, strict=True))
        assert sig[model]["psi"] == pytest.approx(psi, abs=1e-9)
        assert length[model]["ks_statistic"] == pytest.approx(ks_2samp(*lengths[model]).statistic, abs=1e-12)


def _extraction_workload(seed: int, shape_change: bool) -> list[dict]:
    """An invoice extractor answering JSON; with `shape_change` the model nests and renames keys midway."""
    rnd = random.Random(seed)
    old = ("json:{amount:num,currency:str,vendor:str}", ["amount", "currency", "vendor"])
    old_with_notes = ("json:{amount:num,currency:str,notes:str,vendor:str}", ["amount", "currency", "notes", "vendor"])
    new = (
        "json:{total:{amount:num,currency:str},vendor:{name:str}}",
        ["total", "total.amount", "total.currency", "vendor", "vendor.name"],
    )
    rows = []
    for i in range(400):
        side = "baseline" if i < 200 else "current"
        signature, keys = old_with_notes if rnd.random() < 0.2 else old
        if shape_change and side == "current" and rnd.random() < 0.7:
            signature, keys = new
        text_length = int(rnd.gauss(90 if signature == new[0] else 70, 12))
        rows.append(
            call(
                i,
                _at(i % 200 * 60, side),
                signature,
                output_keys=keys,
                output_length=text_length,
                output_format="json",
                service_name="invoice-extractor",
                request_model="gpt-4o-mini",
            )
        )
    return rows


@pytest.mark.parametrize("shape_change", [True, False])
def test_shape_change_midway_is_drift_and_a_stable_workload_is_not(tmp_path: Path, shape_change: bool) -> None:
    write_calls(tmp_path, _extraction_workload(3, shape_change))
    con = connect(tmp_path)
    sig = run(con, "signature_drift", group="service", **SIDES).to_pylist()
    keys = run(con, "key_changes", group="service", min_share=0.05, **SIDES).to_pylist()
    assert [r["group"] for r in sig] == ["invoice-extractor"]
    if shape_change:
        assert sig[0]["status"] == "drift" and sig[0]["js_distance"] > 0.5
        assert sig[0]["top_current_signature"].startswith("json:{total:")
        appeared = {k["key"] for k in keys if k["change"] == "appeared"}
        assert appeared == {"total", "total.amount", "total.currency", "vendor.name"}
        assert {k["status"] for k in keys} == {"changed"}
    else:
        assert sig[0]["status"] == "stable" and sig[0]["js_distance"] < 0.1
        assert keys == []
        length = run(con, "length_drift", group="service", **SIDES).to_pylist()
        assert length[0]["status"] == "stable"


def test_two_prompt_versions(tmp_path: Path) -> None:
    rows = [call(i, _at(i, "baseline"), "text:short", prompt_name="support", prompt_version="v3") for i in range(60)]
    rows += [
        call(100 + i, _at(i, "baseline"), "markdown:h2,list", prompt_name="support", prompt_version="v4")
        for i in range(60)
    ]
    write_calls(tmp_path, rows)
    con = connect(tmp_path)
    both = {"baseline_prompt": "support@v3", "current_prompt": "v4"}
    sig = run(con, "signature_drift", **both).to_pylist()[0]
    assert (sig["baseline_calls"], sig["current_calls"], sig["status"]) == (60, 60, "drift")
    same = run(con, "signature_drift", baseline_prompt="v3", current_prompt="v3").to_pylist()[0]
    assert (same["js_distance"], same["status"]) == (0.0, "stable")


def test_signature_mix_over_time(tmp_path: Path) -> None:
    write_calls(tmp_path, _extraction_workload(3, shape_change=True))
    mix = run(connect(tmp_path), "signature_mix_over_time", bucket="day", top=2).to_pylist()
    days = {r["bucket_start"].date() for r in mix}
    assert days == {T0.date(), MID.date()}
    for day in days:
        assert sum(r["share"] for r in mix if r["bucket_start"].date() == day) == pytest.approx(1.0)
    first = {r["signature"]: r["calls"] for r in mix if r["bucket_start"].date() == T0.date()}
    assert sum(first.values()) == 200 and "json:{total:{amount:num,currency:str},vendor:{name:str}}" not in first
    assert len({r["signature"] for r in mix}) == 3  # the two most common by name, the rest '(other)'
    assert "(other)" in {r["signature"] for r in mix}


def test_vigil_drift_cli(tmp_path: Path) -> None:
    # the CLI's windows are ages before now: move the workload so its second half is the last 12 hours
    now = datetime.now(UTC)
    rows = _extraction_workload(4, shape_change=True)
    for row in rows:
        row["start_time"] = row["start_time"] - MID + now - timedelta(hours=12)  # current = the last 12 h
    data = tmp_path / "cli"
    write_calls(data, rows)
    base = [
        sys.executable,
        "-m",
        "vigil",
        "drift",
        "--data-dir",
        str(data),
        "--baseline",
        "3d..12h",
        "--current",
        "12h",
    ]
    out = subprocess.run([*base, "--by", "model", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["signature"][0]["group"] == "gpt-4o-mini" and report["signature"][0]["status"] == "drift"
    assert {k["key"] for k in report["keys"] if k["change"] == "appeared"} >= {"total.amount"}
    table = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and "output signatures:" in table.stdout and "drift" in table.stdout
    bad = subprocess.run([*base, "--prompt-a", "v1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--prompt-b" in bad.stderr


def _send_extractions(provider, service_shape_changes: bool, start: datetime, n: int, rnd: random.Random) -> None:
    """`n` invoice-extraction tasks from `start`, one a minute, each with one chat call answering JSON."""
    tracer = provider.get_tracer("example.extractor")
    for i in range(n):
        begin = int((start + timedelta(minutes=i)).timestamp() * 1e9)
        answer = {"vendor": "Acme GmbH", "amount": round(rnd.uniform(5, 500), 2), "currency": "EUR"}
        if rnd.random() < 0.2:
            answer["notes"] = "paid by card"
        if service_shape_changes:
            answer = {"vendor": {"name": "Acme GmbH"}, "total": {"amount": answer["amount"], "currency": "EUR"}}
        root = tracer.start_span("extract-invoice", start_time=begin)
        with trace.use_span(root, end_on_exit=False):
            llm = tracer.start_span("chat gpt-4o-mini", start_time=begin + 1_000_000)
            llm.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 300,
                    "gen_ai.usage.output_tokens": 40,
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "Extract the invoice fields."}]}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": json.dumps(answer)}]}]
                    ),
                }
            )
            llm.end(end_time=begin + 800_000_000)
        root.end(end_time=begin + 900_000_000)


def test_shape_change_through_the_collector(collector, config) -> None:
    """Real OTel SDK exporter → collector (signatures computed at ingest) → drift: one service drifts, one not."""
    now = datetime.now(UTC).replace(microsecond=0)
    rnd = random.Random(11)
    providers = {}
    for service in ("changing-extractor", "stable-extractor"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"127.0.0.1:{collector.grpc_port}", True)))
        providers[service] = provider
        _send_extractions(provider, False, now - timedelta(hours=3), 60, rnd)
        _send_extractions(provider, service == "changing-extractor", now - timedelta(hours=1), 60, rnd)
        assert provider.force_flush(10_000)
    data = Path(config.store.data_dir)
    wait_for(lambda: query(data, "SELECT count(*) AS n FROM tasks"), lambda rows: rows[0]["n"] == 240, 20)
    sides = {"baseline_since": now - timedelta(hours=4), "baseline_until": now - timedelta(hours=2)}
    sides |= {"current_since": now - timedelta(hours=2), "current_until": now + timedelta(minutes=1)}
    con = connect(data)
    sig = {r["group"]: r for r in run(con, "signature_drift", group="service", **sides).to_pylist()}
    assert (sig["changing-extractor"]["baseline_calls"], sig["changing-extractor"]["current_calls"]) == (60, 60)
    assert sig["changing-extractor"]["status"] == "drift" and sig["changing-extractor"]["js_distance"] > 0.9
    assert sig["stable-extractor"]["status"] == "stable" and sig["stable-extractor"]["js_distance"] < 0.2
    keys = run(con, "key_changes", group="service", **sides).to_pylist()
    assert {k["group"] for k in keys} == {"changing-extractor"}
    assert {k["key"] for k in keys if k["change"] == "appeared"} >= {"total.amount", "vendor.name"}
    for provider in providers.values():
        provider.shutdown()
