"""The payees, scheduled-transfers and batch screens in a real Chromium against the real
server, at desktop and phone widths."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import PHONE, PageProblems
from tests.e2e.test_web_banking import HTTP_ERROR_LOG, Person, expect, log_in, shots
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def people(web_server: Server) -> Iterator[tuple[Person, Person]]:
    ada, grace = Person(web_server, "Ada", "Lovelace"), Person(web_server, "Grace", "Hopper")
    yield ada, grace
    ada.http.close()
    grace.http.close()


def funded_account(person: Person, amount: int) -> dict[str, Any]:
    account = person.open_account()
    deposit = person.http.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": amount},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert deposit.status_code == 201, deposit.text
    return account


def test_a_member_saves_a_payee_schedules_a_standing_order_and_cancels_it(
    page: Any, web_server: Server, people: tuple[Person, Person]
) -> None:
    ada, grace = people
    funded_account(ada, 500_00)
    theirs = grace.open_account()
    log_in(page, web_server, ada.email, "/payees")

    expect(page.get_by_role("heading", name="Payees")).to_be_visible()
    expect(page.get_by_text("No payees yet.")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Grace")
    page.get_by_label("Account number").fill(theirs["number"])
    page.get_by_role("button", name="Add payee").click()
    expect(page.get_by_text("Grace (G*** H***) is saved as a payee.")).to_be_visible()
    payee = page.locator(".payee")
    expect(payee).to_have_count(1)
    expect(payee).to_contain_text("G*** H***")
    shots(page, "payees")

    payee.get_by_role("link", name="Schedule").click()
    expect(page.get_by_role("heading", name="Scheduled transfers")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value(
        f"payee:{ada.http.get('/v1/payees').json()['items'][0]['id']}"
    )
    page.get_by_label("Amount", exact=True).fill("15.00")
    page.get_by_label("Description").fill("Club fee")
    page.get_by_label("Repeat").select_option("monthly")
    page.get_by_label("Number of times").fill("12")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_text("Scheduled: first run")).to_be_visible()
    item = page.locator(".schedule")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("$15.00 · Every month")
    expect(item.locator(".last-result")).to_have_text("Not run yet")
    expect(item.locator(".next-run")).not_to_have_text("Active")
    shots(page, "scheduled")

    item.get_by_role("button", name="Cancel Club fee").click()
    expect(page.get_by_text("The scheduled transfer is cancelled.")).to_be_visible()
    expect(page.locator(".schedule .next-run")).to_have_text("Cancelled")
    [order] = ada.http.get("/v1/scheduled-transfers").json()["items"]
    assert (order["status"], order["amount"], order["count"]) == ("cancelled", 15_00, 12)


def test_a_batch_csv_is_previewed_then_sent_and_a_bad_line_blocks_it(
    page: Any, page_problems: PageProblems, web_server: Server, people: tuple[Person, Person]
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)  # the rejected all-or-nothing batch answers 409
    ada, grace = people
    mine = funded_account(ada, 100_00)
    theirs = grace.open_account()
    log_in(page, web_server, ada.email, "/batch")
    expect(page.get_by_role("heading", name="Batch transfers")).to_be_visible()

    def upload(text: str) -> None:
        page.get_by_label("CSV file").set_input_files(
            files=[{"name": "batch.csv", "mimeType": "text/csv", "buffer": text.encode()}]
        )

    number = theirs["number"]
    upload(f'account_number,amount,description\n{number},10.00,Rent\n{number},2.50,"Tea, milk"\n')
    preview = page.get_by_role("region", name="Preview")
    expect(preview.locator("tbody tr")).to_have_count(2)
    expect(preview).to_contain_text("Tea, milk")
    send = preview.get_by_role("button", name="Send 2 transfers ($12.50)")
    expect(send).to_be_enabled()
    shots(page, "batch-preview")
    send.click()
    result = page.get_by_role("region", name="Result")
    expect(result).to_contain_text("2 of 2 transfers sent.")
    shots(page, "batch-result")
    assert [a["balance"] for a in grace.accounts()] == [12_50]

    # A line that cannot be sent is marked, and nothing can be sent until it is fixed.
    upload(f"{number},abc,Oops\n{number},1.00,Fine\n")
    preview = page.get_by_role("region", name="Preview")
    expect(preview).to_contain_text("the amount must be greater than zero")
    expect(preview.get_by_role("button", name="Send 2 transfers ($1.00)")).to_be_disabled()

    # All or nothing: one transfer beyond the balance and nothing is sent.
    upload(f"{number},50.00,First\n{number},500.00,Too much\n")
    page.get_by_role("region", name="Preview").get_by_role("button").click()
    result = page.get_by_role("region", name="Result")
    expect(result).to_contain_text("Nothing was sent: line 2 was refused (insufficient funds).")
    page.set_viewport_size(PHONE)
    expect(result).to_be_visible()
    assert ada.http.get(f"/v1/accounts/{mine['id']}/balance").json()["balance"] == 87_50
