"""Reversals in a real Chromium against the real server: an admin reverses part of a
transfer from the Entries screen, behind a confirmation; the member sees the reversal on
the Refunds screen, linked to the original transfer. At desktop and phone widths."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DESKTOP, PHONE, PageProblems, go_to, screenshot
from tests.e2e.test_web_banking import Person, create_admin, expect, log_in, log_out
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

HTTP_ERROR_LOG = "Failed to load resource: the server responded with a status of"


@pytest.mark.parametrize(("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_an_admin_reverses_part_of_a_transfer_and_the_member_sees_it(
    page: Any,
    page_problems: PageProblems,
    web_server: Server,
    width: str,
    viewport: dict[str, int],
) -> None:
    page_problems.allow(HTTP_ERROR_LOG)  # the refused second reversal answers 409
    page.set_viewport_size(viewport)
    payer = Person(web_server, "Grace", "Hopper")
    payee = Person(web_server, "Ada", "Lovelace")
    source, target = payer.open_account(), payee.open_account()
    funded = payer.http.post(
        f"/v1/accounts/{source['id']}/deposits",
        json={"amount": 100_00},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert funded.status_code == 201, funded.text
    sent = payer.http.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": 30_00,
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert sent.status_code == 201, sent.text
    transfer_id = sent.json()["id"]

    admin = create_admin(web_server)
    log_in(page, web_server, admin, "/staff/entries")
    expect(page.get_by_role("heading", name="Entries", level=1)).to_be_visible()
    page.get_by_label("Account number").fill(target["number"])
    page.get_by_role("button", name="Show entries").click()
    rows = page.locator(".staff-entries tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name=f"Reverse entry {transfer_id}").click()
    # Nothing moves before the confirmation.
    confirm = page.get_by_role("form", name="Confirm the reversal")
    expect(confirm).to_contain_text("Reverse $30.00 (transfer)")
    confirm.get_by_label("Reason").fill("Sent by mistake")
    confirm.get_by_label("Amount (USD)").fill("10.00")
    screenshot(page, f"{width}-staff-reverse-confirm")
    assert payee.accounts()[0]["balance"] == 30_00
    confirm.get_by_role("button", name="Confirm reversal").click()
    expect(
        page.get_by_text("The reversal of $10.00 waits for a second admin's approval.")
    ).to_be_visible()
    assert payee.accounts()[0]["balance"] == 30_00
    # A second admin approves it.
    checker = create_admin(web_server)
    with httpx.Client(base_url=web_server.base_url) as http:
        token = http.post("/v1/auth/login", json={"email": checker, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        queue = http.get("/v1/approvals", params={"status": "pending_approval"}, headers=headers)
        (pending,) = [
            item for item in queue.json()["items"] if item["reversed_entry_id"] == transfer_id
        ]
        decided = http.post(f"/v1/approvals/{pending['id']}/approve", headers=headers)
        assert decided.json()["status"] == "executed", decided.text
    page.get_by_role("button", name="Show entries").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("reversal")
    expect(rows.first).to_contain_text("Sent by mistake")
    screenshot(page, f"{width}-staff-entries")
    assert payee.accounts()[0]["balance"] == 20_00

    # More than is left is refused and said so at the form.
    page.get_by_role("button", name=f"Reverse entry {transfer_id}").click()
    confirm = page.get_by_role("form", name="Confirm the reversal")
    confirm.get_by_label("Reason").fill("Again")
    confirm.get_by_label("Amount (USD)").fill("25.00")
    confirm.get_by_role("button", name="Confirm reversal").click()
    expect(confirm.get_by_role("alert")).to_contain_text("There is a problem")
    assert payee.accounts()[0]["balance"] == 20_00

    log_out(page)
    log_in(page, web_server, payer.email)
    go_to(page, "Refunds")
    expect(page.get_by_role("heading", name="Refunds and reversals")).to_be_visible()
    line = page.locator("table.reversals tbody tr")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("Reversal")
    expect(line).to_contain_text("+$10.00")
    link = line.locator("a.reversal-original")
    expect(link).to_have_attribute("data-entry", transfer_id)
    expect(link).to_contain_text(re.compile(r"-\$30\.00"))
    screenshot(page, f"{width}-member-reversals")
    link.click()
    expect(page).to_have_url(re.compile(rf"#/accounts/{source['id']}$"))
    payer.http.close()
    payee.http.close()
    assert httpx.get(f"{web_server.base_url}/v1/health/live").status_code == 200
