"""The real dashboards in a real browser: `python -m streamlit run dashboards/app.py` on a free
loopback port, rendered by headless Chromium (Streamlit draws in the browser, so only a browser
shows what a user sees). Skipped when /usr/bin/chromium is not installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_dashboards import APP, REFUND_QUESTION, REPO, TRACES, build_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_responds(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture
def dashboards_url(tmp_path: Path) -> Iterator[str]:
    root = build_store(tmp_path / "data")
    port = _free_port()
    env = os.environ | {"VIGIL_STORE_DATA_DIR": str(root)}
    env.pop("VIGIL_CONFIG", None)
    command = [sys.executable, "-m", "streamlit", "run", APP, "--server.address", "127.0.0.1"]
    command += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_responds(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _dom_showing(tmp_path: Path, url: str, text: str, timeout_s: float = 90.0) -> str:
    """The rendered DOM once it shows `text`. A cold server's first session spends seconds importing
    plotly and pandas, which Chromium's virtual time does not wait for, so it may take a few loads."""
    dom = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dom = _chromium(tmp_path, "--dump-dom", url).stdout
        if text in dom:
            return dom
    raise AssertionError(f"{text!r} never rendered at {url}; last DOM ends {dom[-500:]!r}")


@pytest.mark.timeout(300)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium")
def test_overview_renders_in_chromium(dashboards_url: str, tmp_path: Path) -> None:
    url = dashboards_url + "?range=all"
    dom = _dom_showing(tmp_path, url, "Cost per successful task")
    assert "Success rate" in dom and "75.0%" in dom  # the tile's value, computed and drawn
    screenshot = tmp_path / "overview.png"
    shot = _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1400,900", url)
    assert screenshot.exists(), shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000  # a blank 1400x900 page is under 10 KB


@pytest.mark.timeout(300)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium")
def test_trace_link_opens_the_conversation_in_chromium(dashboards_url: str, tmp_path: Path) -> None:
    _dom_showing(tmp_path, f"{dashboards_url}traces?range=all&trace={TRACES['refund']}", REFUND_QUESTION)
