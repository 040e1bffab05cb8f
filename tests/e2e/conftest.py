"""Browser tests: the real server process plus Debian's Chromium driven by Playwright.

Chromium comes from the system (`.ci/install-browser` installs it); Playwright never
downloads a browser. Without /usr/bin/chromium the browser tests skip with a message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.databases import DatabaseFactory
from tests.server import Server

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Flags for a headless Chromium on a machine with no display and a closed network: without
# the background-networking flags it keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM}: run .ci/install-browser "
            "(apt-get install chromium) to enable them"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def web_server(
    chromium: Path, database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One real server per test module (its own fresh database)."""
    url = database_factory.new_url()
    log_path = tmp_path_factory.mktemp("web-server") / "server.log"
    with Server(url, log_path=log_path) as server:
        yield server
    database_factory.drop(url)


@pytest.fixture
def browser_context(chromium: Path, web_server: Server, tmp_path: Path) -> Iterator[Any]:
    """A Chromium with a fresh, empty profile (user data dir) for each test.

    Playwright's sync API keeps an event loop running in this thread while it is active,
    so it starts after the server and its database are ready (they use asyncio.run) and
    stops before they are torn down.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=DESKTOP,
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()


class PageProblems:
    """Console errors, uncaught exceptions and CSP violations seen by a page."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.expected: list[str] = []

    def allow(self, fragment: str) -> None:
        """An error the test provokes on purpose (e.g. a 401 the UI must handle)."""
        self.expected.append(fragment)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(f in m for f in self.expected)]


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser_context: Any, page_problems: PageProblems) -> Iterator[Any]:
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.on(
        "console",
        lambda message: message.type == "error" and page_problems.messages.append(message.text),
    )
    page.on("pageerror", lambda error: page_problems.messages.append(f"uncaught: {error}"))
    yield page
    assert page_problems.unexpected() == [], "the page logged errors"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
