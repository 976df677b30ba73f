"""Kill a `vigil replay run` with SIGKILL mid-run, resume it, and check no finished call was paid twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replay.records import latest_run, run_results
from store.catalog import connect
from tests.llm_server import ScriptedLLM
from tests.test_replay_run import make_store

ROOT = Path(__file__).resolve().parents[1]


def _vigil(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vigil", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_kill_and_resume_pays_nothing_twice(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_store(root, n=16)
    with ScriptedLLM(delay_s=0.15) as server:
        first = _vigil(
            "replay", "run", "--data-dir", str(root), "--set", "s1", "--prompt-version", "v2",
            "--base-url", server.base_url, "--concurrency", "2", "--run-id", "r1",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(list((root / "replay_results").glob("date=*/*.parquet"))) < 5 and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait()
        finished = {r["trace_id"] for r in run_results(connect(root), "r1")}
        seen_before = server.count()
        # reservations journaled before the kill whose call has no result: sent (or about to be) when killed
        journal = [json.loads(line) for line in (root / "replay_journal" / "r1.jsonl").read_text().splitlines()]
        in_flight_usd = sum(entry["usd"] for entry in journal if entry["trace_id"] not in finished)
        assert 5 <= len(finished) < 16
        assert latest_run(connect(root), "r1")["status"] == "running"  # a killed run says so

        gate = subprocess.run(
            [sys.executable, "-m", "vigil", "replay", "gate", "--data-dir", str(root), "--run", "r1"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        assert gate.returncode == 2, gate.stdout + gate.stderr  # incomplete: fails closed

        second = _vigil("replay", "run", "--data-dir", str(root), "--resume", "r1", "--base-url", server.base_url)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, out + err

    per_case = server.count()
    for trace_id in finished:
        case = f"case-{int(trace_id, 16)}"
        assert per_case[case] == 1, f"{case} finished before the kill but was sent again"
    # at most the calls in flight at the kill were sent twice (their answers were never stored)
    assert sum(per_case.values()) <= 16 + 2
    assert sum(n - 1 for n in per_case.values()) == sum(seen_before.values()) - len(finished)
    results = run_results(connect(root), "r1")
    assert len(results) == 16 and {r["status"] for r in results} == {"ok"}
    state = latest_run(connect(root), "r1")
    assert state["status"] == "completed" and state["cases_ok"] == 16
    # the calls in flight at the kill were journaled before they went out: they count as spent
    # (a call journaled but killed before it reached the server counts too: the run cannot know it was not sent)
    charged = sum(r["charged_usd"] for r in results)
    assert state["spent_usd"] == pytest.approx(charged + in_flight_usd)
    if sum(n - 1 for n in per_case.values()):
        assert in_flight_usd > 0 and state["spent_usd"] > charged
    assert "completed" in out and "resume with --resume r1" in err
