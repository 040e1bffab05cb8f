"""/docs (Swagger UI) and /redoc (ReDoc) render with the network cut off: every request
to a host other than this machine is blocked, and none may even be attempted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import SCREENSHOTS, PageProblems, screenshot
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def offline(page: Any) -> list[str]:
    """Block every request leaving this machine; the list gathers what was blocked."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", handle)
    return blocked


def test_swagger_ui_renders_offline_with_the_primer(
    page: Any, page_problems: PageProblems, web_server: Server, offline: list[str]
) -> None:
    page.goto(f"{web_server.base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Banking API")
    expect(page.locator(".swagger-ui .info")).to_contain_text("Amounts are integers in minor units")
    expect(page.locator(".swagger-ui .info")).to_contain_text("Idempotency-Key")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    expect(page.locator("#operations-auth-login_v1_auth_login_post")).to_be_visible()
    # Each staff card operation is listed once, under "admin".
    freeze = page.locator(".opblock-summary-path[data-path='/v1/admin/cards/{card_id}/freeze']")
    expect(freeze).to_have_count(1)
    screenshot(page, "docs-swagger")
    assert offline == [], f"the docs tried to reach the network: {offline}"


def test_redoc_renders_offline_without_errors(
    page: Any, page_problems: PageProblems, web_server: Server, offline: list[str]
) -> None:
    page.goto(f"{web_server.base_url}/redoc")
    expect(page.get_by_role("heading", name="Banking API", exact=False).first).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_text("Amounts are integers in minor units").first).to_be_visible()
    expect(page.get_by_text("Rotate a refresh token").first).to_be_attached()
    page.screenshot(path=str(SCREENSHOTS / "desktop-docs-redoc.png"))
    assert offline == [], f"ReDoc tried to reach the network: {offline}"
