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
    from playwright.sync_api import expect, sync_playwright

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
        # Actions and assertions wait alike: 10 s, past the pauses of about 5 s seen in CI
        # when two suites share a busy disk (Playwright's assertions default to 5 s).
        context.set_default_timeout(10_000)
        expect.set_options(timeout=10_000)
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


AXE_SOURCE = Path(__file__).resolve().parent / "support" / "axe.min.js"
# Impacts that fail a test; "moderate" and "minor" findings are printed, not failed.
AXE_FAILING_IMPACTS = ("serious", "critical")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def overflowing(page: Any) -> list[str]:
    """Elements sticking out of the viewport sideways (the page scrolls horizontally)."""
    found: list[str] = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= width + 1) return [];
            const out = [];
            for (const element of document.body.querySelectorAll("*")) {
                const box = element.getBoundingClientRect();
                if (box.width && box.right > width + 1 && !element.closest(".table-wrap *")) {
                    const name = element.tagName.toLowerCase()
                        + (element.id ? `#${element.id}` : "")
                        + (element.className && typeof element.className === "string"
                            ? `.${element.className.trim().split(/\\s+/).join(".")}` : "");
                    out.push(`${name} right=${Math.round(box.right)} > ${width}`);
                }
            }
            return out.length ? out.slice(0, 10) : ["document wider than the viewport"];
        }"""
    )
    return found


def accessibility_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now.

    The engine is evaluated through the DevTools protocol, which the page's CSP does not
    apply to, so the page keeps its real policy (no bypass) while it is checked."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate("() => {\n" + AXE_SOURCE.read_text() + "\n}")
    results: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const options = { runOnly: { type: "tag", values: tags } };
            const result = await window.axe.run(document, options);
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
            }));
        }""",
        AXE_TAGS,
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}"
        for v in results
        if v["impact"] in AXE_FAILING_IMPACTS
    ]


def check_screen(page: Any, name: str, *, widths: tuple[str, ...] = ("desktop", "phone")) -> None:
    """The screen as it is now, at each width: no horizontal overflow, no serious or
    critical accessibility violation; a full-page screenshot of each in test-output/."""
    sizes = {"desktop": DESKTOP, "phone": PHONE}
    problems: list[str] = []
    for width in widths:
        page.set_viewport_size(sizes[width])
        page.wait_for_timeout(50)  # one layout pass after the resize
        problems += [f"{width}: overflow: {item}" for item in overflowing(page)]
        problems += [f"{width}: {item}" for item in accessibility_violations(page)]
        screenshot(page, f"{width}-{name}")
    page.set_viewport_size(DESKTOP)
    assert problems == [], f"screen {name!r}:\n" + "\n".join(problems)


def go_to(page: Any, name: str) -> None:
    """Follow the navigation link `name`: in the sidebar on a desktop; on a phone, in the
    bottom tab bar or, for the screens that do not fit there, under More."""
    link = page.get_by_role("navigation").get_by_role("link", name=name, exact=True)
    if not link.is_visible():
        page.get_by_role("navigation").get_by_role("link", name="More", exact=True).click()
        link = page.locator(".menu-list").get_by_role("link", name=name, exact=True)
    link.click()
