"""Live notifications and the webhooks screen in a real Chromium against the real server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from banking.client import verify_webhook
from tests.databases import DatabaseFactory
from tests.e2e.conftest import PageProblems, screenshot
from tests.factories import PASSWORD
from tests.server import Server
from tests.support.webhook_receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.browser]

HTTP_ERROR_LOG = "Failed to load resource: the server responded with a status of"


@pytest.fixture(scope="module")
def web_server(
    chromium: Any, database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """This module's server: webhooks may go to the test's receiver on 127.0.0.1."""
    url = database_factory.new_url()
    log_path = tmp_path_factory.mktemp("web-events") / "server.log"
    with Server(
        url, log_path=log_path, WEBHOOK_ALLOW_PRIVATE="true", WEBHOOK_RETRY_BASE_S="0.2"
    ) as server:
        yield server
    database_factory.drop(url)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def _member(http: httpx.Client) -> tuple[str, dict[str, str]]:
    email = f"events-{uuid.uuid4().hex[:8]}@example.com"
    http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "date_of_birth": "1990-05-17",
        },
    ).raise_for_status()
    login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return email, {"Authorization": f"Bearer {login.json()['access_token']}"}


def _account(http: httpx.Client, headers: dict[str, str], funds: int = 0) -> dict[str, Any]:
    created = http.post(
        "/v1/accounts", json={"type": "checking", "currency": "USD"}, headers=headers
    )
    created.raise_for_status()
    account: dict[str, Any] = created.json()
    if funds:
        http.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": funds},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        ).raise_for_status()
    return account


def test_money_arriving_is_announced_and_webhooks_are_managed(
    page: Any, page_problems: PageProblems, web_server: Server
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)
    with httpx.Client(base_url=web_server.base_url, timeout=30) as http:
        ada_email, ada = _member(http)
        _bob_email, bob = _member(http)
        ada_account = _account(http, ada)
        bob_account = _account(http, bob, funds=10_000)

        # The stream opens slowly (as on a loaded server): money arriving while it
        # connects must still be announced, so the dashboard waits for it to be open.
        page.add_init_script(
            """
            const realFetch = window.fetch.bind(window);
            const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
            window.fetch = (input, init) => String(input).includes("/v1/events/stream")
              ? later(1200).then(() => realFetch(input, init))
              : realFetch(input, init);
            """
        )
        page.goto(web_server.base_url + "/#/login")
        page.get_by_label("Email").fill(ada_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1, name=re.compile("^Hello"))).to_be_visible()
        balance = page.locator(".account .amount").first
        expect(balance).to_have_text(re.compile(r"0\.00"))

        # Bob pays Ada: her open page says so and shows the new balance, unasked.
        http.post(
            "/v1/transfers",
            json={
                "source_account_id": bob_account["id"],
                "target_account_number": ada_account["number"],
                "amount": 1_250,
                "description": "Dinner",
            },
            headers={**bob, "Idempotency-Key": uuid.uuid4().hex},
        ).raise_for_status()
        expect(page.get_by_text(re.compile(r"Money arrived: .*12\.50 — Dinner"))).to_be_visible()
        expect(balance).to_have_text(re.compile(r"12\.50"))
        # The redraw that brought the balance up to date left the message on screen.
        expect(page.get_by_text(re.compile(r"Money arrived: .*12\.50 — Dinner"))).to_be_visible()
        screenshot(page, "desktop-money-arrived")

        with Receiver(fail_first=1) as receiver:
            page.get_by_role("link", name="Webhooks").click()
            expect(page.get_by_role("heading", name="Webhooks")).to_be_focused()
            page.get_by_label("URL").fill(receiver.url)
            page.get_by_label("Event types").fill("deposit.*")
            page.get_by_role("button", name="Add endpoint").click()
            secret = page.locator("code.secret")
            expect(secret).to_have_text(re.compile(r"^whsec_"))
            signing_secret = secret.inner_text()
            expect(page.get_by_text(receiver.url)).to_be_visible()

            http.post(
                f"/v1/accounts/{ada_account['id']}/deposits",
                json={"amount": 500},
                headers={**ada, "Idempotency-Key": uuid.uuid4().hex},
            ).raise_for_status()
            (first,) = receiver.wait_for(1)
            assert verify_webhook(signing_secret, first.headers, first.body)["type"] == (
                "deposit.posted"
            )
            assert receiver.failed == 1

            page.get_by_role("button", name="Deliveries").click()
            row = page.locator(".deliveries tbody tr").first
            expect(row).to_contain_text("deposit.posted")
            expect(row).to_contain_text("HTTP 500")
            screenshot(page, "desktop-webhooks")
            row.get_by_role("button", name=re.compile("^Retry")).click()
            expect(page.get_by_text("The delivery will be sent again.")).to_be_visible()
            again = receiver.wait_for(2)
        assert again[1].headers["Banking-Event-Id"] == first.headers["Banking-Event-Id"]


def test_money_arriving_updates_the_account_page_in_place_without_undoing_a_form(
    page: Any, page_problems: PageProblems, web_server: Server
) -> None:
    """A person halfway through a withdrawal keeps their open form and choice when money
    arrives; the balance above it still comes up to date."""
    with httpx.Client(base_url=web_server.base_url, timeout=30) as http:
        ada_email, ada = _member(http)
        _bob_email, bob = _member(http)
        ada_account = _account(http, ada, funds=1_000)
        bob_account = _account(http, bob, funds=10_000)

        page.goto(web_server.base_url + "/#/login")
        page.get_by_label("Email").fill(ada_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1, name=re.compile("^Hello"))).to_be_visible()
        page.goto(web_server.base_url + f"/#/accounts/{ada_account['id']}")
        balance = page.locator(".figures .amount").first
        expect(balance).to_have_text(re.compile(r"10\.00"))
        page.get_by_text("Deposit or withdraw cash").click()
        withdraw = page.get_by_role("radio", name="Withdraw")
        withdraw.check()
        page.locator("body").click(position={"x": 5, "y": 5})  # nothing focused: not typing

        http.post(
            "/v1/transfers",
            json={
                "source_account_id": bob_account["id"],
                "target_account_number": ada_account["number"],
                "amount": 1_250,
                "description": "Rent share",
            },
            headers={**bob, "Idempotency-Key": uuid.uuid4().hex},
        ).raise_for_status()
        expect(page.get_by_text(re.compile(r"Money arrived: .*12\.50"))).to_be_visible()
        expect(balance).to_have_text(re.compile(r"22\.50"))
        expect(page.locator("tr.credit")).to_have_count(2)
        # The same form, still open, with the person's choice.
        expect(page.locator("details.panel").first).to_have_attribute("open", "")
        expect(withdraw).to_be_checked()
        expect(page.get_by_role("button", name="Withdraw", exact=True)).to_be_visible()
