"""The real dashboards in a real browser: `python -m streamlit run dashboards/app.py` on a free loopback
port, every page opened by Playwright driving Debian's headless Chromium (`executable_path`, no browser
download). Streamlit draws in the browser, so only a browser shows what a user sees: each page must
draw its Plotly charts and show no exception. Screenshots land in test-artifacts/dashboards/ (ignored
by git) for a person to look at. Skipped when /usr/bin/chromium is not installed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.test_dashboards import APP, REFUND_QUESTION, REPO, TRACES, build_store
from vigil.up import dashboards_command

CHROMIUM = Path("/usr/bin/chromium")
# COMMON.md's flags; Playwright adds --headless itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Streamlit scrolls inside its own container, so a full-page screenshot is the viewport: make it tall.
VIEWPORT = {"width": 1400, "height": 2400}
ARTIFACTS = REPO / "test-artifacts" / "dashboards"
# page → (path and query, a visible text the page must show, Plotly charts it must draw at least). Tables are
# drawn on a canvas, so their cells are no visible text: the texts are titles, tiles and messages.
PAGES = {
    "overview": ("?range=all", "75.0%", 1),  # success rate
    "cost": ("cost?range=all", "Most expensive tasks", 2),
    "traces": (f"traces?range=all&trace={TRACES['refund']}", REFUND_QUESTION, 1),  # the waterfall
    "quality": ("quality?range=all", "Refusal rate by day, model and prompt version", 2),  # a chart's title
    "latency": ("latency?range=all", "Time to first token", 3),
    "replay": ("replay?range=all", "No replay runs yet", 0),
}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium")


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


@pytest.fixture(scope="module")
def dashboards_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = build_store(tmp_path_factory.mktemp("browser") / "data")
    port = _free_port()
    env = os.environ | {"VIGIL_STORE_DATA_DIR": str(root)}
    env.pop("VIGIL_CONFIG", None)
    command = dashboards_command(port, Path(APP))  # the command `vigil dashboards` runs
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def page_text_showing(url: str, text: str) -> str:
    """The visible text of `url` in headless Chromium once it shows `text` (for tests of whole deployments)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport=VIEWPORT)
            page.goto(url, timeout=120_000)
            page.get_by_text(text, exact=False).first.wait_for(timeout=120_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            return page.inner_text("body")
        finally:
            chromium.close()


def _settled(page: Page, text: str, charts: int) -> None:
    """Wait for the page's text, the sidebar and the charts, then for the script run to end (the status widget goes)."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=120_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("Time range").wait_for(timeout=60_000)
    if charts:  # charts drawn, counted per chart: each has two .main-svg layers, so counting those let 2 pass for 3
        page.wait_for_function(
            f"[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length"
            f" >= {charts}",
            timeout=60_000,
        )
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stStatusWidget\"] button')", timeout=60_000
    )  # the "Stop" button shows while the script runs


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_in_chromium(dashboards_url: str, browser: Browser, name: str) -> None:
    path, text, charts = PAGES[name]
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(dashboards_url + path, timeout=120_000)
        _settled(page, text, charts)
        assert page.locator(".js-plotly-plot").count() >= charts
        assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
            '[data-testid="stException"]'
        ).first.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000  # a blank page is a few KB
    finally:
        page.close()


@pytest.mark.timeout(300)
def test_sidebar_choice_goes_into_the_link(dashboards_url: str, browser: Browser) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(dashboards_url + "?range=all", timeout=120_000)
        _settled(page, "75.0%", 1)
        boxes = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]')
        boxes.nth(4).click()  # time range, service, model, prompt version, environment
        page.get_by_role("option", name="production").click()
        page.wait_for_url("**environment=production**", timeout=60_000)
        _settled(page, "50.0%", 1)  # 1 of the 2 production tasks succeeded
    finally:
        page.close()
