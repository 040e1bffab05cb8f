"""Every screen of the web bank, walked as a new customer, a member with history, support
and an admin would, each checked at desktop (1280×800) and phone (390×844) width: no
horizontal overflow, no console error, no serious or critical axe-core violation, and a
screenshot in test-output/screenshots/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRETS
from tests.e2e.conftest import PHONE, PageProblems, check_screen
from tests.e2e.test_web_banking import Person, create_admin
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Chromium logs each 4xx answer to the console; the flows below provoke some on purpose
# (a refused transfer, a wrong password), and allow exactly that line.
HTTP_ERROR_LOG = "Failed to load resource: the server responded with a status of"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def card_payment(server: Server, card: dict[str, Any], amount: int, merchant: str) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/card-authorizations",
        headers={"X-Network-Key": TEST_SECRETS["card_network_api_key"], **key()},
        json={"card_number": card["pan"], "exp_month": card["exp_month"],
              "exp_year": card["exp_year"], "cvv": card["cvv"], "amount": amount,
              "currency": "USD", "merchant_name": merchant, "merchant_category": "5812"},
    )  # fmt: skip
    assert response.status_code == 201, response.text


@pytest.fixture
def member(web_server: Server) -> Iterator[tuple[Person, dict[str, Any], dict[str, Any]]]:
    """Grace, with a checking account that has history, a pending card hold and a savings
    account."""
    grace = Person(web_server, "Grace", "Hopper")
    checking = grace.open_account()
    grace.http.post(f"/v1/accounts/{checking['id']}/deposits",
                    json={"amount": 2_500_00, "description": "Salary"}, headers=key())  # fmt: skip
    savings = grace.http.post(
        "/v1/accounts", json={"type": "savings", "currency": "USD", "nickname": "Rainy day"}
    ).json()
    grace.http.post("/v1/transfers", headers=key(), json={
        "source_account_id": checking["id"], "target_account_id": savings["id"],
        "amount": 300_00, "description": "Monthly saving"})  # fmt: skip
    card = grace.http.post(f"/v1/accounts/{checking['id']}/cards", json={"type": "virtual"}).json()
    card_payment(web_server, card, 12_50, "Corner Café")
    yield grace, checking, savings
    grace.http.close()


def log_in(page: Any, server: Server, email: str) -> None:
    page.goto(f"{server.base_url}/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_new_customer_signs_up_straight_in_and_stays_in_across_a_reload(
    page: Any, page_problems: PageProblems, web_server: Server
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)  # the refused password
    page.goto(web_server.base_url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    check_screen(page, "login")

    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    # Empty fields are reported on the first submit, in words, each field highlighted.
    page.get_by_role("button", name="Create my profile").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Check the highlighted fields.")
    expect(page.get_by_label("First name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(summary).not_to_contain_text("String should")
    check_screen(page, "signup-errors")

    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("First name").fill("Łukasz")
    page.get_by_label("Last name").fill("Żółć-Wiśniewski")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_label("Date of birth").fill("1990-05-17")
    page.get_by_role("button", name="Create my profile").click()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create my profile").click()

    # Straight in, no second login.
    expect(page.get_by_role("heading", name="Hello, Łukasz")).to_be_visible()
    expect(page.get_by_text("You have no accounts yet.")).to_be_visible()
    check_screen(page, "home-new-customer")

    # A reload keeps the session, and keeps ONE session on the server.
    page.reload()
    expect(page.get_by_role("heading", name="Hello, Łukasz")).to_be_visible()
    page.goto(f"{web_server.base_url}/#/sessions")
    page.reload()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(page.locator(".session")).to_have_count(1)
    # A second tab continues the same session too.
    second = page.context.new_page()
    second.goto(f"{web_server.base_url}/#/profile")
    expect(second.get_by_role("heading", name="Profile")).to_be_visible()
    second.close()
    page.reload()
    expect(page.locator(".session")).to_have_count(1)
    check_screen(page, "sessions")
    # The refresh token is in an HttpOnly cookie for the refresh route only.
    assert "banking_refresh" not in page.evaluate("document.cookie")
    (refresh,) = [c for c in page.context.cookies() if c["name"] == "banking_refresh"]
    assert (refresh["httpOnly"], refresh["secure"], refresh["sameSite"], refresh["path"]) == (
        True, True, "Strict", "/v1/auth/refresh",
    )  # fmt: skip

    # Logging out ends it (and clears the refresh cookie): a reload then asks to log in.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    names = {cookie["name"] for cookie in page.context.cookies()}
    assert not names & {"banking_refresh", "banking_signed_in"}
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_member_sees_home_history_refusals_with_figures_and_manages_things(
    page: Any, page_problems: PageProblems, web_server: Server, member: Any
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)
    grace, checking, savings = member
    log_in(page, web_server, grace.email)

    # Home: totals, account cards, recent activity in words, pending holds, the chart.
    expect(page.get_by_role("heading", name="Hello, Grace")).to_be_visible()
    expect(page.locator(".totals")).to_contain_text("$2,500.00")
    expect(page.locator(".account-tile")).to_have_count(2)
    activity = page.get_by_role("region", name="Recent activity")
    expect(activity).to_contain_text("Monthly saving")
    expect(activity).to_contain_text("Cash deposit")
    expect(page.get_by_role("region", name="Pending card payments")).to_contain_text("Corner Café")
    expect(
        page.get_by_role("img", name=re.compile(r"^Total USD balance over the last 90 days"))
    ).to_be_visible()
    check_screen(page, "home")

    # The account: balance and available differ, and the page says why.
    page.locator(".account-tile").first.click()
    expect(page.locator(".figures")).to_contain_text("On hold")
    expect(page.locator(".holds-note")).to_contain_text("Corner Café")
    history = page.get_by_role("region", name="Transactions")
    expect(history.locator("tbody tr")).to_have_count(2)
    # The history table is not squeezed: every balance is shown in full.
    expect(history.locator("tbody tr").first.locator(".tx-balance")).to_have_text("$2,200.00")
    page.get_by_label("Search").fill("saving")
    expect(history.locator("tbody tr")).to_have_count(1)
    page.get_by_label("Search").fill("")
    page.get_by_label("Direction").select_option("in")
    expect(history.locator("tbody tr")).to_have_count(1)
    page.get_by_label("Direction").select_option("")
    check_screen(page, "account")

    # A transfer beyond the available money is refused before anything is sent, with figures.
    page.get_by_role("link", name="Transfer").click()
    expect(page.get_by_role("heading", name="Move money")).to_be_visible()
    page.get_by_label("To my account").select_option(savings["id"])
    page.get_by_label("Amount", exact=True).fill("99999.99")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("You can send up to $2,187.50")
    expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")
    check_screen(page, "transfer-refused")
    page.get_by_label("Amount", exact=True).fill("25")
    page.get_by_role("button", name="Continue").click()
    confirm = page.get_by_role("region", name="Check and confirm")
    expect(confirm).to_contain_text("$2,162.50 available")
    check_screen(page, "transfer-confirm")
    confirm.get_by_role("button", name="Change").click()
    page.goto(f"{web_server.base_url}/#/accounts/new")
    expect(page.get_by_role("heading", name="Open an account")).to_be_visible()
    check_screen(page, "open-account")
    page.goto(f"{web_server.base_url}/#/nowhere")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    check_screen(page, "not-found")

    # Rename the account from its settings.
    page.goto(f"{web_server.base_url}/#/accounts/{checking['id']}")
    page.get_by_text("Account settings").click()
    page.get_by_label("Account name").fill("Everyday")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("heading", name="Everyday", level=1)).to_be_visible()

    # Cards: the number and CVV disappear on navigation; a card can be cancelled.
    page.get_by_role("link", name="Cards").first.click()
    page.get_by_role("button", name="Issue card").click()
    expect(page.locator(".reveal .pan")).to_have_count(2)
    check_screen(page, "cards-issued")
    # Another action on the screen takes the number and CVV away too.
    # Card numbers end in three random digits and a check digit: two of a person's cards
    # can share their last four, so each card's buttons are found within its own row.
    newest_card = grace.http.get("/v1/cards").json()["items"][0]
    newest = newest_card["last4"]
    row = page.locator(f'li[data-card-id="{newest_card["id"]}"]')
    row.get_by_role("button", name=f"Freeze card ending {newest}").click()
    expect(page.get_by_text(f"Card ending {newest} is frozen.")).to_be_visible()
    expect(page.locator(".pan")).to_have_count(0)
    page.get_by_role("button", name="Issue card").click()
    expect(page.locator(".reveal .pan")).to_have_count(2)
    page.get_by_role("link", name="Home").first.click()
    page.go_back()
    expect(page.get_by_role("heading", name="Cards", level=1)).to_be_visible()
    expect(page.locator(".pan")).to_have_count(0)
    latest = grace.http.get("/v1/cards").json()["items"][0]
    last4 = latest["last4"]
    row = page.locator(f'li[data-card-id="{latest["id"]}"]')
    row.get_by_role("button", name=f"Show payments of card ending {last4}").click()
    expect(row.get_by_role("button", name=f"Hide payments of card ending {last4}")).to_be_visible()
    row.get_by_role("button", name=f"Cancel card ending {last4}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Cancel the card ending {last4}?")
    check_screen(page, "cards-cancel-dialog")
    dialog.get_by_role("button", name="Cancel card").click()
    expect(page.get_by_text(f"Card ending {last4} is cancelled.")).to_be_visible()
    check_screen(page, "cards")

    # Close the (emptied) savings account.
    emptied = grace.http.post("/v1/transfers", headers=key(), json={
        "source_account_id": savings["id"], "target_account_id": checking["id"],
        "amount": 300_00})  # fmt: skip
    assert emptied.status_code == 201, emptied.text
    page.goto(f"{web_server.base_url}/#/accounts/{savings['id']}")
    page.get_by_text("Account settings").click()
    page.get_by_role("button", name="Close this account").click()
    page.get_by_role("dialog").get_by_role("button", name="Close account").click()
    expect(page.get_by_text("Rainy day is closed.")).to_be_visible()
    assert {a["id"]: a["status"] for a in grace.accounts()}[savings["id"]] == "closed"

    # Statements and profile (with the password change, which ends the other sessions).
    page.goto(f"{web_server.base_url}/#/statements")
    expect(page.get_by_role("heading", name="Statements", level=1)).to_be_visible()
    expect(page.locator(".statement-lines tbody tr").first).to_be_visible()
    check_screen(page, "statements")
    page.goto(f"{web_server.base_url}/#/profile")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Current password").fill(PASSWORD + "-wrong")
    page.get_by_label("New password", exact=True).fill("a brand new passphrase 42")
    page.get_by_label("Repeat the new password").fill("a brand new passphrase 42")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    check_screen(page, "profile")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()


def test_on_a_phone_the_navigation_is_one_bottom_tab_bar(
    page: Any, web_server: Server, member: Any
) -> None:
    grace, _, _ = member
    page.set_viewport_size(PHONE)
    log_in(page, web_server, grace.email)
    expect(page.get_by_role("heading", name="Hello, Grace")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    tabs = nav.get_by_role("link")
    visible = [tabs.nth(i) for i in range(tabs.count()) if tabs.nth(i).is_visible()]
    assert [t.inner_text().strip() for t in visible] == [
        "Home",
        "Move money",
        "Cards",
        "Statements",
        "More",
    ]
    boxes = [t.bounding_box() for t in visible]
    assert len({round(b["y"]) for b in boxes}) == 1, "the tabs sit on one row"
    assert boxes[0]["y"] > 844 - 100, "the tab bar is at the bottom"
    nav.get_by_role("link", name="More").click()
    expect(page.get_by_role("heading", name="More")).to_be_visible()
    expect(page.locator(".menu-list")).to_contain_text("Profile")
    check_screen(page, "more", widths=("phone",))


def test_support_lands_on_the_console_and_an_admin_freezes_with_a_reason(
    page: Any, page_problems: PageProblems, web_server: Server, member: Any
) -> None:
    grace, checking, _ = member
    admin = create_admin(web_server)
    log_in(page, web_server, admin)
    # Staff land on the console, not on a customer home screen.
    expect(page.get_by_role("heading", name="Staff console")).to_be_visible()
    expect(page.get_by_role("link", name="Move money")).to_have_count(0)
    check_screen(page, "staff-console")

    page.get_by_label("Name, email or account number").fill("grace hop")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=re.compile(grace.email)).first).to_be_visible()
    page.get_by_label("Name, email or account number").fill(grace.email)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".results-list li")).to_have_count(1)
    page.get_by_role("link", name=re.compile("Grace Hopper")).click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    expect(page.locator(".results-list li")).to_have_count(2)
    check_screen(page, "staff-person")

    page.get_by_role("link", name=re.compile(checking["number"][-4:])).first.click()
    expect(page.get_by_role("heading", name=re.compile("Checking account"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Grace Hopper"))).to_be_visible()
    check_screen(page, "staff-account")
    page.get_by_role("button", name=f"Freeze account {checking['number']}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Freeze account").click()
    # No reason, no freeze.
    expect(dialog.get_by_label("Reason (kept in the audit log)")).to_have_attribute(
        "aria-invalid", "true"
    )
    check_screen(page, "staff-freeze-dialog")
    assert {a["id"]: a["status"] for a in grace.accounts()}[checking["id"]] == "active"
    dialog.get_by_label("Reason (kept in the audit log)").fill("Card reported stolen by phone")
    dialog.get_by_role("button", name="Freeze account").click()
    expect(page.get_by_text(f"Account {checking['number']} is now frozen.")).to_be_visible()
    assert {a["id"]: a["status"] for a in grace.accounts()}[checking["id"]] == "frozen"

    # The audit log says who, what, when and why.
    page.get_by_role("link", name="Audit log").first.click()
    page.get_by_label("Event type").fill("account.frozen")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("table.audit tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(admin)
    expect(row).to_contain_text("Card reported stolen by phone")
    check_screen(page, "staff-audit")
