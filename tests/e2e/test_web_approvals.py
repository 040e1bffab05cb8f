"""Four-eyes approvals in a real Chromium against the real server: a member's large
transfer waits (held) on the Approvals screen; an admin approves it behind a confirmation
and the money moves once. An admin's unfreeze and daily-limit raise are sent for approval
from the staff account page and a second admin decides them on the queue. At desktop and
phone widths."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    DESKTOP,
    PHONE,
    PageProblems,
    accessibility_violations,
    go_to,
    overflowing,
    screenshot,
)
from tests.e2e.test_web_banking import Person, create_admin, expect, log_in, log_out
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.parametrize(("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_a_large_transfer_waits_and_an_admin_approves_it(
    page: Any,
    page_problems: PageProblems,
    web_server: Server,
    width: str,
    viewport: dict[str, int],
) -> None:
    page.set_viewport_size(viewport)
    payer = Person(web_server, "Grace", "Hopper")
    payee = Person(web_server, "Ada", "Lovelace")
    source, target = payer.open_account(), payee.open_account()
    funded = payer.http.post(
        f"/v1/accounts/{source['id']}/deposits",
        json={"amount": 15_000_000},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert funded.status_code == 201, funded.text
    asked = payer.http.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": 12_000_000,
            "description": "House deposit",
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["id"]

    log_in(page, web_server, payer.email)
    go_to(page, "Approvals")
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    mine = page.locator("table.approvals tbody tr")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("Waiting for approval")
    expect(mine).to_contain_text("$120,000.00")
    expect(mine).to_contain_text("Needs another person")
    screenshot(page, f"{width}-member-approvals")
    log_out(page)

    admin = create_admin(web_server)
    log_in(page, web_server, admin, "/approvals")
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    page.get_by_role("button", name=f"Approve approval {approval_id}").click()
    confirm = page.get_by_role("form", name="Confirm the approval")
    expect(confirm).to_contain_text("Send $120,000.00")
    assert payee.accounts()[0]["balance"] == 0
    screenshot(page, f"{width}-staff-approval-confirm")
    confirm.get_by_role("button", name="Confirm approval").click()
    expect(page.get_by_text("Approved and sent: $120,000.00.")).to_be_visible()
    assert payee.accounts()[0]["balance"] == 12_000_000
    assert payer.accounts()[0]["balance"] == 3_000_000
    # The queue (pending by default) is empty now.
    expect(page.get_by_text("Nothing waits for a decision.")).to_be_visible()
    screenshot(page, f"{width}-staff-approvals")
    payer.http.close()
    payee.http.close()


def _check(page: Any, name: str) -> None:
    """The screen at the current width: no sideways overflow, no serious or critical
    accessibility finding; a screenshot in test-output/."""
    problems = overflowing(page) + accessibility_violations(page)
    screenshot(page, name)
    assert problems == [], f"screen {name!r}:\n" + "\n".join(problems)


@pytest.mark.parametrize(("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_an_unfreeze_and_a_limit_raise_wait_for_a_second_admin(
    page: Any,
    page_problems: PageProblems,
    web_server: Server,
    width: str,
    viewport: dict[str, int],
) -> None:
    page.set_viewport_size(viewport)
    owner = Person(web_server, "Katherine", "Johnson")
    account = owner.open_account()
    number = account["number"]
    maker = create_admin(web_server)
    with httpx.Client(base_url=web_server.base_url) as http:
        token = http.post("/v1/auth/login", json={"email": maker, "password": PASSWORD}).json()
        frozen = http.post(
            f"/v1/admin/accounts/{account['id']}/freeze",
            json={"reason": "Fraud report"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert frozen.status_code == 200, frozen.text

    log_in(page, web_server, maker, f"/staff/accounts/{account['id']}")
    expect(page.get_by_role("heading", name=re.compile("Checking account"))).to_be_visible()
    page.get_by_role("button", name=f"Unfreeze account {number}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("needs a second admin")
    dialog.get_by_label("Reason (kept in the audit log)").fill("Owner verified by phone")
    dialog.get_by_role("button", name="Send for approval").click()
    expect(page.get_by_text(f"Unfreeze of account {number} sent for approval")).to_be_visible()
    waiting = page.locator(".pending-approvals")
    expect(waiting).to_contain_text("Unfreeze")
    expect(waiting).to_contain_text("Owner verified by phone")
    expect(page.get_by_role("button", name=f"Unfreeze account {number}")).to_have_count(0)
    assert [a["status"] for a in owner.accounts()] == ["frozen"]

    # Lowering the daily limit applies at once; a raise above the bank's default waits.
    limits = page.get_by_role("form", name="Daily outgoing limit")
    limits.get_by_label("Daily outgoing limit (USD)").fill("100.00")
    limits.get_by_label("Why it changes (kept in the audit log)").fill("Owner asked")
    limits.get_by_role("button", name="Set limit").click()
    expect(page.get_by_text("Daily outgoing limit set to $100.00.")).to_be_visible()
    assert owner.accounts()[0]["daily_outgoing_limit"] == 100_00
    limits = page.get_by_role("form", name="Daily outgoing limit")
    limits.get_by_label("Daily outgoing limit (USD)").fill("abc")
    limits.get_by_label("Why it changes (kept in the audit log)").fill("Business account")
    limits.get_by_role("button", name="Set limit").click()
    expect(limits.get_by_role("alert")).to_be_visible()
    limits.get_by_label("Daily outgoing limit (USD)").fill("2,000,000.00")
    limits.get_by_role("button", name="Set limit").click()
    expect(page.get_by_text("Raise to $2,000,000.00 a day sent for approval")).to_be_visible()
    expect(page.locator(".pending-approvals")).to_contain_text("Daily limit raise to $2,000,000.00")
    assert owner.accounts()[0]["daily_outgoing_limit"] == 100_00
    _check(page, f"{width}-staff-account-pending")

    # The maker cannot decide their own requests.
    page.goto(f"{web_server.base_url}/#/approvals")
    queue = page.locator("table.approvals tbody tr.approval")
    expect(queue).to_have_count(2)
    expect(queue.first).to_contain_text("Raise the daily limit of account")
    expect(queue.nth(1)).to_contain_text("Unfreeze account")
    expect(queue.first).to_contain_text("Needs another person")
    log_out(page)

    checker = create_admin(web_server)
    log_in(page, web_server, checker, "/approvals")
    expect(queue).to_have_count(2)
    _check(page, f"{width}-staff-approvals-staff-actions")
    unfreeze_id, raise_id = _pending_ids(web_server, checker)
    page.get_by_role("button", name=f"Approve approval {unfreeze_id}").click()
    confirm = page.get_by_role("form", name="Confirm the approval")
    expect(confirm).to_contain_text("Unfreeze account")
    confirm.get_by_role("button", name="Confirm approval").click()
    expect(page.get_by_text("Approved and applied: Unfreeze account")).to_be_visible()
    assert [a["status"] for a in owner.accounts()] == ["active"]
    expect(queue).to_have_count(1)
    page.get_by_role("button", name=f"Reject approval {raise_id}").click()
    confirm = page.get_by_role("form", name="Confirm the rejection")
    expect(confirm).to_contain_text("Nothing changes")
    confirm.get_by_label("Reason").fill("Not without a signed form")
    confirm.get_by_role("button", name="Confirm rejection").click()
    expect(page.get_by_text("Nothing waits for a decision.")).to_be_visible()
    assert owner.accounts()[0]["daily_outgoing_limit"] == 100_00
    page.get_by_label("Kind").select_option("daily_limit_raise")
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Filter").click()
    # Newest first (the server is shared by this module's tests): this test's raise.
    expect(queue.first).to_contain_text("Rejected")
    expect(queue.first).to_contain_text(number[-4:])
    expect(queue.first.locator("td.num")).to_have_text("—")
    expect(queue.filter(has_text="Transfer to")).to_have_count(0)
    _check(page, f"{width}-staff-approvals-decided")
    owner.http.close()


def _pending_ids(server: Server, email: str) -> tuple[str, str]:
    with httpx.Client(base_url=server.base_url) as http:
        token = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
        queue = http.get(
            "/v1/approvals",
            params={"status": "pending_approval"},
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ).json()["items"]
    kinds = {item["kind"]: item["id"] for item in queue}
    return kinds["account_unfreeze"], kinds["daily_limit_raise"]
