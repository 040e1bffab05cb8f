"""The bank's name in the header, paying a saved payee, history searched by the server with
counterparty names, the home chart from the daily closing balances, and the staff account
page's running balance: in a real Chromium against the real server, at desktop and phone
widths."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.databases import DatabaseFactory
from tests.e2e.conftest import PHONE, check_screen
from tests.e2e.test_web_banking import Person, create_admin, expect, log_in, log_out
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

BANK_NAME = "Harbour & Hill Savings Bank"


@pytest.fixture(scope="module")
def web_server(
    chromium: Path, database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The module's server, with a bank name of its own (a long one, for the phone)."""
    url = database_factory.new_url()
    log_path = tmp_path_factory.mktemp("web-server") / "server.log"
    with Server(url, log_path=log_path, BANK_NAME=BANK_NAME) as server:
        yield server
    database_factory.drop(url)


@pytest.fixture
def people(web_server: Server) -> Iterator[tuple[Person, Person]]:
    ada, grace = Person(web_server, "Ada", "Lovelace"), Person(web_server, "Grace", "Hopper")
    yield ada, grace
    ada.http.close()
    grace.http.close()


def deposit(person: Person, account: dict[str, Any], amount: int, description: str) -> None:
    response = person.http.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": amount, "description": description},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text


def history_queries(page: Any) -> list[dict[str, list[str]]]:
    """The query of each history request the page sends from now on."""
    seen: list[dict[str, list[str]]] = []

    def record(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.path.endswith("/transactions"):
            seen.append(parse_qs(parts.query))

    page.on("request", record)
    return seen


def test_a_member_pays_a_payee_and_searches_the_history_on_the_server(
    page: Any, web_server: Server, people: tuple[Person, Person]
) -> None:
    ada, grace = people
    mine = ada.open_account()
    theirs = grace.open_account()
    # 26 rent payments and 3 small ones: one page of search results is 25 lines.
    for _ in range(26):
        deposit(ada, mine, 150_00, "Rent share")
    for _ in range(3):
        deposit(ada, mine, 3_50, "Coffee fund")
    added = ada.http.post(
        "/v1/payees", json={"name": "Landlord", "account_number": theirs["number"]}
    )
    assert added.status_code == 201, added.text

    # The bank's name, in the header and the title, at both widths.
    log_in(page, web_server, ada.email)
    brand = page.get_by_role("banner").get_by_role("link", name=BANK_NAME)
    expect(brand).to_be_visible()
    expect(page).to_have_title(f"Home · {BANK_NAME}")
    page.set_viewport_size(PHONE)
    expect(brand).to_be_visible()
    box = brand.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= PHONE["width"]

    # Pay the saved payee from the payees list.
    page.goto(f"{web_server.base_url}/#/payees")
    page.get_by_role("link", name="Pay Landlord").click()
    expect(page.get_by_role("heading", name="Move money")).to_be_visible()
    expect(page.get_by_role("radio", name="A saved payee")).to_be_checked()
    expect(page.get_by_label("To payee")).to_have_value(added.json()["id"])
    expect(page.get_by_label("Payee's account number")).to_be_hidden()
    page.get_by_label("Amount", exact=True).fill("40")
    page.get_by_label("Description").fill("Keys")
    page.get_by_role("button", name="Continue").click()
    confirm = page.get_by_role("region", name="Check and confirm")
    expect(confirm).to_contain_text("Landlord: G*** H***")
    check_screen(page, "transfer-to-payee")
    confirm.get_by_role("button", name="Send $40.00").click()
    expect(page.get_by_text("Sent $40.00.")).to_be_visible()
    [sent] = grace.http.get(f"/v1/accounts/{theirs['id']}/transactions").json()["items"]
    assert (sent["amount"], sent["description"]) == (40_00, "Keys")

    # The account page: the history is searched by the server, "Load more" follows the
    # cursor of the same search, and the amount bounds go as minor units.
    queries = history_queries(page)
    history = page.get_by_role("region", name="Transactions")
    rows = history.locator("tbody tr")
    expect(rows.first).to_contain_text("Keys")
    page.get_by_label("Search").fill("rent")
    # A full page of matches: the server searched, not the page over what it had loaded.
    expect(page.get_by_text("25 matching transactions shown.")).to_be_visible()
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(26)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.get_by_text("26 matching transactions shown.")).to_be_visible()
    searched = [q for q in queries if q.get("q") == ["rent"]]
    assert [bool(q.get("cursor")) for q in searched] == [False, True]
    page.get_by_label("Search").fill("")
    page.get_by_label("Amount to").fill("10")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Coffee fund")
    assert queries[-1]["max_amount"] == ["1000"]
    check_screen(page, "account-search")


def test_history_and_recent_activity_name_the_counterparty(
    page: Any, web_server: Server, people: tuple[Person, Person]
) -> None:
    ada, grace = people
    mine = ada.open_account()
    theirs = grace.open_account()
    deposit(ada, mine, 500_00, "Salary")
    sent = ada.http.post(
        "/v1/transfers",
        json={"source_account_id": mine["id"], "target_account_number": theirs["number"],
              "amount": 25_00, "description": "Lunch"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text

    # The receiver sees the sender's full name; the sender sees the masked name, as the
    # account lookup shows it.
    log_in(page, web_server, grace.email)
    activity = page.get_by_role("region", name="Recent activity")
    expect(activity).to_contain_text("From Ada Lovelace")
    page.locator(".account-tile").first.click()
    history = page.get_by_role("region", name="Transactions")
    expect(history.locator("tbody tr").first).to_contain_text("From Ada Lovelace")
    log_out(page)
    log_in(page, web_server, ada.email)
    expect(page.get_by_role("region", name="Recent activity")).to_contain_text("To G*** H***")
    page.get_by_role("link", name=re.compile(mine["number"][-4:])).first.click()
    history = page.get_by_role("region", name="Transactions")
    expect(history.locator("tbody tr").first).to_contain_text("To G*** H***")
    expect(history.locator("tbody tr").nth(1)).to_contain_text("Cash deposit")
    check_screen(page, "account-counterparty")


def test_the_home_chart_draws_the_daily_closing_balances(
    page: Any, web_server: Server, people: tuple[Person, Person]
) -> None:
    ada, _ = people
    mine = ada.open_account()
    deposit(ada, mine, 1_234_00, "Salary")
    asked: list[str] = []
    page.on(
        "request",
        lambda request: "/balance-history" in request.url and asked.append(request.url),
    )
    log_in(page, web_server, ada.email)
    chart = page.get_by_role("img", name=re.compile(r"^Total USD balance over the last 90 days"))
    expect(chart).to_have_attribute("aria-label", re.compile(r"to \$1,234\.00 on "))
    assert len(asked) == 1
    query = parse_qs(urlsplit(asked[0]).query)
    # 90 days ending today, in the bank's time zone (UTC here).
    today = dt.datetime.now(dt.UTC).date()
    assert query == {"from": [str(today - dt.timedelta(days=89))], "to": [str(today)]}
    check_screen(page, "home-chart")


def test_staff_see_an_accounts_history_with_its_running_balance(
    page: Any, web_server: Server, people: tuple[Person, Person]
) -> None:
    ada, _ = people
    mine = ada.open_account()
    deposit(ada, mine, 100_00, "Salary")
    taken = ada.http.post(
        f"/v1/accounts/{mine['id']}/withdrawals",
        json={"amount": 30_00},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert taken.status_code == 201, taken.text
    refused = ada.http.post(
        f"/v1/accounts/{mine['id']}/withdrawals",
        json={"amount": 1_000_00},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refused.status_code == 409, refused.text
    deposit(ada, mine, 5_00, "Refund")

    log_in(page, web_server, create_admin(web_server), f"/staff/accounts/{mine['id']}")
    rows = page.get_by_role("region", name="Latest journal entries").locator("tbody tr")
    expect(rows).to_have_count(4)
    # Newest first; the declined attempt moved nothing.
    expect(rows.locator(".tx-amount")).to_have_text(["+$5.00", "-$1,000.00", "-$30.00", "+$100.00"])
    expect(rows.locator(".tx-balance")).to_have_text(["$75.00", "—", "$70.00", "$100.00"])
    check_screen(page, "staff-account-balance")
