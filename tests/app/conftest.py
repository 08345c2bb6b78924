"""Fixtures for the browser tests: the app in a subprocess and Debian's headless Chromium.

The server runs as ``python -m matfuse.cli app`` (the real command) on a free port; Chromium is
``/usr/bin/chromium`` (``make test`` installs it with apt when missing). The tests skip, with
the reason, only when Playwright or Chromium is absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MATFUSE_CHROMIUM") or (
    "/usr/bin/chromium"
    if Path("/usr/bin/chromium").exists()
    else shutil.which("chromium") or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SERVER_START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright, or a skip that says what is missing."""
    pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright missing: pip install -e '.[app]'"
    )
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium not found at {CHROMIUM} and could not be installed "
            "(`make test` runs `apt-get install -y chromium`); browser tests skipped"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def app_server(artifacts: Path) -> Iterator[str]:
    """Start ``matfuse app`` on a free port, wait until it answers, and yield its URL."""
    pytest.importorskip("gradio", reason="the web UI needs the app extra: pip install -e '.[app]'")
    port = _free_port()
    log_path = artifacts / "server.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in teardown
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "matfuse.cli", "app", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"matfuse app exited early:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"matfuse app did not answer within {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def app_url(chromium_browser: object, app_server: str) -> str:
    """The app's URL for the browser tests (which skip first if there is no browser)."""
    return app_server


@pytest.fixture
def page(chromium_browser, app_url: str) -> Iterator[object]:
    """A fresh browser context (so a fresh app session) with the app loaded."""
    context = chromium_browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    # assertions wait too: 5 s (Playwright's default) is not enough for loading the demo
    # dataset on a 2-core runner that is also training or benchmarking
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    page.goto(app_url)
    page.wait_for_selector("#load-data")
    yield page
    context.close()
