"""The web UI in a real Chromium against the real server: sign up, log in, dashboard,
sessions; screenshots of each screen at desktop and phone widths."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DESKTOP, PHONE, PageProblems, screenshot
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Chromium logs every 4xx answer to the console; the flows below provoke some on purpose.
HTTP_ERROR_LOG = "Failed to load resource: the server responded with a status of"


def expect(page: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(page)


@pytest.mark.parametrize(("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_sign_up_log_in_see_the_dashboard_and_manage_sessions(
    page: Any, page_problems: PageProblems, web_server: Server, width: str, viewport: dict[str, int]
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)
    page.set_viewport_size(viewport)
    email = f"web-{uuid.uuid4().hex[:8]}@example.com"

    page.goto(web_server.base_url + "/")
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_focused()
    screenshot(page, f"{width}-login")

    # Sign up, first with a password the policy refuses: the reason is shown at the field.
    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_label("Date of birth").fill("1990-05-17")
    page.get_by_role("button", name="Create my profile").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    screenshot(page, f"{width}-signup-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my profile").click()
    # Signed in straight after signing up.
    expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()
    expect(page.get_by_text("Your profile is ready.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()
    expect(page.get_by_text("You have no accounts yet.")).to_be_visible()
    screenshot(page, f"{width}-dashboard")

    # A wrong password is answered with the server's message, not a blank failure.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD + "-wrong")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()
    expect(page.get_by_text("You are logged in.")).to_be_visible()

    # A second device logs in; the sessions screen lists both and revokes the other one.
    other = httpx.post(
        f"{web_server.base_url}/v1/auth/login", json={"email": email, "password": PASSWORD}
    ).json()
    page.goto(f"{web_server.base_url}/#/sessions")
    expect(page.get_by_role("heading", name="Sessions")).to_be_focused()
    sessions = page.locator(".session")
    expect(sessions).to_have_count(2)
    expect(page.get_by_text("This device")).to_have_count(1)
    screenshot(page, f"{width}-sessions")
    page.get_by_role("button", name=re.compile(r"^Revoke ")).click()
    expect(page.get_by_text("The session was revoked")).to_be_visible()
    expect(sessions).to_have_count(1)
    revoked = httpx.get(
        f"{web_server.base_url}/v1/auth/sessions",
        headers={"Authorization": f"Bearer {other['access_token']}"},
    )
    assert revoked.status_code == 401

    # The session survives a reload (the refresh token is in an HttpOnly cookie).
    page.reload()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(sessions).to_have_count(1)


def test_logging_out_ends_the_session_on_the_server(
    page: Any, page_problems: PageProblems, web_server: Server
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)
    email = f"web-{uuid.uuid4().hex[:8]}@example.com"
    signup = httpx.post(
        f"{web_server.base_url}/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "first_name": "Alan",
              "last_name": "Turing", "date_of_birth": "1980-06-23"},
    )  # fmt: skip
    assert signup.status_code == 201
    page.goto(web_server.base_url + "/#/sessions")
    expect(page).to_have_url(re.compile(r"#/login\?next=%2Fsessions$"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Back where the user wanted to go.
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    # A second device watches the server's list of sessions: the browser's and its own.
    other = httpx.post(
        f"{web_server.base_url}/v1/auth/login", json={"email": email, "password": PASSWORD}
    ).json()
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}

    def sessions_on_the_server() -> list[dict[str, Any]]:
        response = httpx.get(f"{web_server.base_url}/v1/auth/sessions", headers=other_headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert len(sessions_on_the_server()) == 2
    with page.expect_response(lambda response: response.url.endswith("/v1/auth/logout")) as logout:
        page.get_by_role("button", name="Log out", exact=True).first.click()
    assert logout.value.status == 204
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    # The browser's session is gone on the server, and only that one.
    remaining = sessions_on_the_server()
    assert len(remaining) == 1
    assert remaining[0]["current"] is True
    page.goto(web_server.base_url + "/#/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_amounts_are_formatted_from_minor_units_per_currency(page: Any, web_server: Server) -> None:
    page.goto(web_server.base_url + "/")
    results = page.evaluate(
        """async () => {
            const money = await import("/js/money.js");
            return {
                usd: money.formatMoney(123456, "USD"),
                negative: money.formatMoney(-5, "EUR"),
                jpy: money.formatMoney(1235, "JPY"),
                kwd: money.formatMoney(1001, "KWD"),
                huge: money.formatMoney("900719925474099312", "USD"),
                parsed: [money.parseAmount("1,234.5", "USD"), money.parseAmount("0.10", "USD"),
                         money.parseAmount("12.345", "USD"), money.parseAmount("500", "JPY"),
                         money.parseAmount("-3", "USD"), money.parseAmount("abc", "USD")],
            };
        }"""
    )
    assert results == {
        "usd": "$1,234.56",
        "negative": "-€0.05",
        "jpy": "¥1,235",
        "kwd": "KWD\u00a01.001",
        "huge": "$9,007,199,254,740,993.12",
        "parsed": [123450, 10, None, 500, None, None],
    }
