"""The banking screens in a real Chromium against the real server: open an account,
deposit, a declined withdrawal, a transfer to another person (payee looked up and
confirmed), cards and statements, and staff freezing an
account; a screenshot of each main screen at desktop and phone widths."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.e2e.conftest import DESKTOP, PHONE, PageProblems, screenshot
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

HTTP_ERROR_LOG = "Failed to load resource: the server responded with a status of"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def shots(page: Any, name: str) -> None:
    """The current screen at desktop and phone widths."""
    screenshot(page, f"desktop-{name}")
    page.set_viewport_size(PHONE)
    screenshot(page, f"phone-{name}")
    page.set_viewport_size(DESKTOP)


class Person:
    def __init__(self, server: Server, first: str, last: str) -> None:
        self.server = server
        self.email = f"{first.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        self.http = httpx.Client(base_url=server.base_url)
        response = self.http.post(
            "/v1/auth/signup",
            json={"email": self.email, "password": PASSWORD, "first_name": first,
                  "last_name": last, "date_of_birth": "1985-12-09"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        tokens = self.http.post(
            "/v1/auth/login", json={"email": self.email, "password": PASSWORD}
        ).json()
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"

    def open_account(self) -> dict[str, Any]:
        response = self.http.post("/v1/accounts", json={"type": "checking", "currency": "USD"})
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        return account

    def accounts(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.http.get("/v1/accounts").json()["items"]
        return items


@pytest.fixture
def grace(web_server: Server) -> Iterator[Person]:
    person = Person(web_server, "Grace", "Hopper")
    yield person
    person.http.close()


def log_in(page: Any, server: Server, email: str, path: str = "/") -> None:
    page.goto(f"{server.base_url}/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=re.compile("^(Hello, |Staff console)"))).to_be_visible()
    if path != "/":
        page.goto(f"{server.base_url}/#{path}")


def log_out(page: Any) -> None:
    """Log out and wait until the app has finished doing so: it answers the click by
    calling the API first and only then shows the login screen, which would clear a form
    filled in the meantime."""
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()


def create_admin(server: Server) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    created = subprocess.run(
        [sys.executable, "-m", "banking.cli", "users", "create-admin", "--email", email,
         "--password-stdin"],
        input=PASSWORD + "\n", env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    return email


def test_a_member_opens_an_account_deposits_and_pays_another_person(
    page: Any, page_problems: PageProblems, web_server: Server, grace: Person
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)  # the declined withdrawal answers 409
    theirs = grace.open_account()
    ada = Person(web_server, "Ada", "Lovelace")
    ada.http.close()

    log_in(page, web_server, ada.email)
    expect(page.get_by_text("You have no accounts yet.")).to_be_visible()
    page.get_by_role("link", name="Open an account").first.click()
    expect(page.get_by_role("heading", name="Open an account")).to_be_visible()
    page.get_by_label("Nickname").fill("Everyday")
    shots(page, "open-account")
    page.get_by_role("button", name="Open account").click()

    # The account page: deposit, then a withdrawal beyond the balance is declined and shown.
    expect(page.get_by_role("heading", name="Everyday")).to_be_visible()
    page.get_by_text("Deposit or withdraw cash").click()
    page.get_by_label("Amount (USD)").fill("250.00")
    page.get_by_label("Description").fill("Salary")
    page.get_by_role("button", name="Deposit", exact=True).click()
    expect(page.get_by_text("Deposited $250.00. New balance $250.00.")).to_be_visible()
    expect(page.locator(".figures .amount").first).to_have_text("$250.00")
    # Without holds there is no "On hold" figure (and no stray text in its place).
    expect(page.locator(".figures")).not_to_contain_text("On hold")
    expect(page.locator(".figures")).not_to_contain_text("null")
    expect(page.locator("tr.credit")).to_have_count(1)

    page.get_by_role("radio", name="Withdraw").check()
    page.get_by_label("Amount (USD)").fill("1000")
    page.get_by_role("button", name="Withdraw", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Not enough money: $1,000.00 is more than the $250.00 available in Everyday."
    )
    page.get_by_role("button", name="Declined").click()
    expect(page.locator("tr.declined")).to_have_count(1)
    expect(page.locator("tr.declined")).to_contain_text("Insufficient funds")
    shots(page, "account")

    # Pay Grace by account number: the payee is looked up and confirmed first.
    page.get_by_role("link", name="Move money").first.click()
    expect(page.get_by_role("heading", name="Move money")).to_be_visible()
    page.get_by_role("radio", name="Someone else").check()
    page.get_by_label("Payee's account number").fill(theirs["number"])
    page.get_by_label("Amount", exact=True).fill("42.50")
    page.get_by_label("Description").fill("Dinner")
    page.get_by_role("button", name="Continue").click()
    confirm = page.get_by_role("region", name="Check and confirm")
    expect(confirm).to_contain_text("G*** H***")
    expect(confirm).to_contain_text("$42.50")
    shots(page, "transfer-confirm")
    # A double click sends one transfer: the button is disabled and the key is the same.
    confirm.get_by_role("button", name="Send $42.50").dblclick()
    expect(page.get_by_text("Sent $42.50.")).to_be_visible()
    expect(page.get_by_role("heading", name="Everyday")).to_be_visible()
    assert [a["balance"] for a in grace.accounts()] == [42_50]
    expect(page.locator(".figures .amount").first).to_have_text("$207.50")

    page.get_by_role("link", name="Home").first.click()
    expect(page.get_by_role("heading", name="Recent activity")).to_be_visible()
    expect(page.locator(".activity li")).to_have_count(2)
    shots(page, "dashboard-with-accounts")

    page.get_by_role("link", name="Profile").first.click()
    expect(page.get_by_role("heading", name="Profile")).to_be_visible()
    expect(page.locator("#main").get_by_text("Ada Lovelace")).to_be_visible()
    page.get_by_label("Phone").fill("+14155550100")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    shots(page, "profile")


def test_an_own_account_transfer_picks_the_target_from_a_list(
    page: Any, web_server: Server, grace: Person
) -> None:
    first = grace.open_account()
    grace.http.post(
        f"/v1/accounts/{first['id']}/deposits",
        json={"amount": 100_00},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    second = grace.http.post("/v1/accounts", json={"type": "savings", "currency": "USD"}).json()
    log_in(page, web_server, grace.email, f"/transfer?from={first['id']}")
    expect(page.get_by_role("radio", name="One of my accounts")).to_be_checked()
    page.get_by_label("To my account").select_option(second["id"])
    page.get_by_label("Amount", exact=True).fill("30")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Send $30.00").click()
    expect(page.get_by_text("Sent $30.00.")).to_be_visible()
    balances = {a["id"]: a["balance"] for a in grace.accounts()}
    assert balances == {first["id"]: 70_00, second["id"]: 30_00}


def test_an_admin_finds_and_freezes_a_members_account(
    page: Any, web_server: Server, grace: Person
) -> None:
    account = grace.open_account()
    admin = create_admin(web_server)
    log_in(page, web_server, admin)
    expect(page.get_by_role("heading", name="Staff console")).to_be_visible()
    page.get_by_label("Name, email or account number").fill(account["number"])
    page.get_by_role("button", name="Search").click()
    results = page.locator(".results-list li")
    expect(results).to_have_count(1)
    results.get_by_role("link").click()
    page.get_by_role("button", name=f"Freeze account {account['number']}").click()
    page.get_by_label("Reason (kept in the audit log)").fill("Suspicious activity")
    page.get_by_role("dialog").get_by_role("button", name="Freeze account").click()
    expect(page.get_by_text(f"Account {account['number']} is now frozen.")).to_be_visible()
    expect(page.get_by_role("button", name=f"Unfreeze account {account['number']}")).to_be_visible()
    assert [a["status"] for a in grace.accounts()] == ["frozen"]
    page.get_by_role("link", name="Audit log").first.click()
    page.get_by_label("Event type").fill("account.frozen")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="account.frozen")).to_have_count(1)
    shots(page, "staff")


def authorize(server: Server, pan: str, cvv: str, expires: str, amount: int) -> dict[str, Any]:
    """A card payment as the card network sends it."""
    month, year = expires.split("/")
    response = httpx.post(
        f"{server.base_url}/v1/card-authorizations",
        headers={"X-Network-Key": TEST_SECRETS["card_network_api_key"],
                 "Idempotency-Key": str(uuid.uuid4())},
        json={"card_number": pan, "exp_month": int(month), "exp_year": int(year), "cvv": cvv,
              "amount": amount, "currency": "USD", "merchant_name": "Corner Bookshop",
              "merchant_category": "5942"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    authorization: dict[str, Any] = response.json()
    return authorization


def test_cards_issue_show_once_set_limits_freeze_and_list_payments(
    page: Any, web_server: Server, grace: Person
) -> None:
    account = grace.open_account()
    grace.http.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": 100_00},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    log_in(page, web_server, grace.email, "/cards")
    expect(page.get_by_role("heading", name="Cards", level=1)).to_be_visible()
    expect(page.get_by_text("You have no cards yet.")).to_be_visible()
    page.get_by_label("Name on card").fill("G Hopper")
    page.get_by_role("button", name="Issue card").click()
    reveal = page.get_by_role("alert").filter(has_text="Your new card")
    expect(reveal).to_contain_text("shown only this once")
    expect(reveal).to_contain_text("G HOPPER")
    expect(reveal.locator(".pan").first).to_have_text(re.compile(r"^\d{4} \d{4} \d{4} \d{4}$"))
    pan = reveal.locator(".pan").first.inner_text().replace(" ", "")
    cvv = reveal.locator(".pan").last.inner_text()
    expires = reveal.locator(".mono").filter(has_text="/").inner_text()
    shots(page, "cards-issued")
    reveal.get_by_role("button", name=re.compile("hide")).click()
    expect(page.locator(".pan")).to_have_count(0)
    (card,) = grace.http.get("/v1/cards").json()["items"]
    assert "pan" not in card
    assert "cvv" not in card

    page.get_by_text("Change limits").click()
    page.get_by_label("Per payment (USD)").fill("25.00")
    page.get_by_label("Per day (USD)").fill("80")
    page.get_by_role("button", name="Save limits").click()
    expect(page.get_by_text(f"Limits of card ending {card['last4']} saved.")).to_be_visible()
    card = grace.http.get(f"/v1/cards/{card['id']}").json()
    assert (card["per_transaction_limit"], card["daily_limit"]) == (25_00, 80_00)
    expect(page.locator(".card-limits")).to_contain_text("$25.00")

    authorize(web_server, pan, cvv, expires, 12_50)
    authorize(web_server, pan, cvv, expires, 30_00)  # over the per-payment limit
    page.get_by_role("button", name=f"Show payments of card ending {card['last4']}").click()
    payments = page.locator(".authorizations tbody tr")
    expect(payments).to_have_count(2)
    expect(payments.filter(has_text="On hold")).to_contain_text("$12.50")
    expect(payments.filter(has_text="Declined")).to_contain_text("per-payment limit")

    page.get_by_role("button", name=f"Freeze card ending {card['last4']}").click()
    expect(page.get_by_text(f"Card ending {card['last4']} is frozen.")).to_be_visible()
    assert grace.http.get(f"/v1/cards/{card['id']}").json()["status"] == "frozen"
    page.get_by_role("button", name=f"Show payments of card ending {card['last4']}").click()
    shots(page, "cards")
    page.get_by_role("button", name=f"Unfreeze card ending {card['last4']}").click()
    expect(page.get_by_text(f"Card ending {card['last4']} is active again.")).to_be_visible()
    assert grace.http.get(f"/v1/cards/{card['id']}").json()["status"] == "active"


def test_statements_list_months_show_one_and_download(
    page: Any, web_server: Server, grace: Person
) -> None:
    account = grace.open_account()
    grace.http.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": 12_34},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    grace.http.post(
        f"/v1/accounts/{account['id']}/withdrawals",
        json={"amount": 2_00, "description": "Cash at the corner"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    card = grace.http.post(f"/v1/accounts/{account['id']}/cards", json={"type": "virtual"}).json()
    expires = f"{card['exp_month']:02d}/{card['exp_year']}"
    authorize(web_server, card["pan"], card["cvv"], expires, 3_21)
    log_in(page, web_server, grace.email, "/statements")
    expect(page.get_by_role("heading", name="Statements", level=1)).to_be_visible()
    month = grace.http.get(f"/v1/accounts/{account['id']}/statements").json()["items"][0]["month"]
    expect(page.get_by_label("Month")).to_have_value(month)
    figures = page.locator(".statement .figures")
    expect(figures).to_contain_text("Closing balance")
    expect(figures.locator("div").filter(has_text="Money in")).to_contain_text("$12.34")
    expect(figures.locator("div").filter(has_text="Closing balance")).to_contain_text("$10.34")
    lines = page.locator(".statement-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.filter(has_text="Cash at the corner")).to_contain_text("$10.34")
    holds = page.locator(".pending-holds tbody tr")
    expect(holds).to_have_count(1)
    expect(holds).to_contain_text("Corner Bookshop")
    expect(holds).to_contain_text("$3.21")
    shots(page, "statements")
    with page.expect_download() as csv:
        page.get_by_role("button", name="Download CSV").click()
    assert csv.value.suggested_filename == f"statement-{account['number'][-4:]}-{month}.csv"
    assert "Cash at the corner" in Path(csv.value.path()).read_text()
    with page.expect_download() as pdf:
        page.get_by_role("button", name="Download PDF").click()
    assert pdf.value.suggested_filename.endswith(".pdf")
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
