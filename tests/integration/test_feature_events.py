"""The events of approvals, scheduled transfers, card refunds and interest (docs/events.md):
each written once, in the change's own transaction, and none for a refused action."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.approvals import service as approvals
from banking.core.db import utcnow
from banking.events.models import Event
from banking.interest import service as interest
from banking.schedules import service as schedules
from tests.cards_support import NETWORK, approved, capture, issue_card
from tests.factories import Member, keyed, make_member, make_staff, open_account
from tests.integration.test_ledger_verify import run_verify

pytestmark = pytest.mark.anyio

THRESHOLD = 50_00


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "approval_threshold_minor": THRESHOLD,
        "approval_ttl_s": 3600,
        "scheduler_interval_s": 0,
        "schedule_retries": 1,
        "schedule_retry_interval_s": 600,
    }


async def _events(app: FastAPI, subject_id: str, prefix: str = "") -> list[Event]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.scalars(
            select(Event).where(Event.subject_id == subject_id).order_by(Event.id)
        )
        return [row for row in rows if row.type.startswith(prefix)]


def _summary(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(event.type, str(event.owner_id) if event.owner_id else None) for event in events]


async def _transfer(
    client: httpx.AsyncClient, member: Member, source: dict[str, Any], target: dict[str, Any],
    amount: int,
) -> httpx.Response:  # fmt: skip
    return await client.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": amount,
        },
        headers=keyed(member.headers),
    )


class TestApprovalEvents:
    async def test_a_large_transfer_tells_its_owner_when_asked_and_when_approved(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        payer, payee = await make_member(client), await make_member(client)
        source = await open_account(client, payer, balance_minor=200_00)
        target = await open_account(client, payee)
        checker = await make_staff(client, app, "admin")
        small = await _transfer(client, payer, source, target, THRESHOLD)
        assert small.status_code == 201
        pending = await _transfer(client, payer, source, target, 120_00)
        assert pending.status_code == 202, pending.text
        body = pending.json()
        events = await _events(app, body["id"])
        assert _summary(events) == [("approval.requested", payer.user_id)]
        assert json.loads(events[0].data) == body
        assert events[0].subject_type == "approval"
        assert str(events[0].account_id) == source["id"]
        # Refused decisions write nothing.
        refused = await client.post(f"/v1/approvals/{body['id']}/approve", headers=payer.headers)
        assert refused.status_code == 409
        assert len(await _events(app, body["id"])) == 1
        decided = await client.post(f"/v1/approvals/{body['id']}/approve", headers=checker.headers)
        assert decided.status_code == 200, decided.text
        events = await _events(app, body["id"])
        assert _summary(events) == [
            ("approval.requested", payer.user_id),
            ("approval.approved", payer.user_id),
        ]
        assert json.loads(events[1].data) == decided.json()
        assert decided.json()["status"] == "executed"
        again = await client.post(f"/v1/approvals/{body['id']}/reject", json={"reason": "x"},
                                  headers=checker.headers)  # fmt: skip
        assert again.status_code == 409
        assert len(await _events(app, body["id"])) == 2
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_rejected_failed_and_expired_approvals(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        payer, payee = await make_member(client), await make_member(client)
        source = await open_account(client, payer, balance_minor=300_00)
        target = await open_account(client, payee)
        checker = await make_staff(client, app, "admin")
        first = (await _transfer(client, payer, source, target, 60_00)).json()
        rejected = await client.post(
            f"/v1/approvals/{first['id']}/reject", json={"reason": "Unusual"},
            headers=checker.headers,
        )  # fmt: skip
        assert rejected.status_code == 200, rejected.text
        events = await _events(app, first["id"], "approval.rejected")
        assert _summary(events) == [("approval.rejected", payer.user_id)]
        assert json.loads(events[0].data) == rejected.json()

        second = (await _transfer(client, payer, source, target, 60_00)).json()
        frozen = await client.post(
            f"/v1/admin/accounts/{source['id']}/freeze", headers=checker.headers
        )
        assert frozen.status_code == 200
        failed = await client.post(f"/v1/approvals/{second['id']}/approve", headers=checker.headers)
        assert failed.json()["status"] == "failed"
        events = await _events(app, second["id"])
        assert _summary(events) == [
            ("approval.requested", payer.user_id),
            ("approval.failed", payer.user_id),
        ]
        assert json.loads(events[1].data)["decline_reason"] == "account_frozen"
        unfreeze = await client.post(
            f"/v1/admin/accounts/{source['id']}/unfreeze", headers=checker.headers
        )
        assert unfreeze.status_code == 202
        maker = await make_staff(client, app, "admin")
        unfrozen = await client.post(
            f"/v1/approvals/{unfreeze.json()['id']}/approve", headers=maker.headers
        )
        assert unfrozen.json()["status"] == "executed"

        third = (await _transfer(client, payer, source, target, 60_00)).json()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        app.state.clock = lambda: later
        assert await approvals.expire_due(app.state.db) == 1
        assert await approvals.expire_due(app.state.db) == 0
        events = await _events(app, third["id"])
        assert _summary(events) == [
            ("approval.requested", payer.user_id),
            ("approval.expired", payer.user_id),
        ]
        data = json.loads(events[1].data)
        assert (data["status"], data["held_amount"]) == ("expired", 0)

    async def test_a_reversal_approval_is_told_to_the_member_whose_money_it_is(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=100_00)
        maker = await make_staff(client, app, "admin")
        items = (
            await client.get(f"/v1/accounts/{account['id']}/transactions", headers=member.headers)
        ).json()["items"]
        asked = await client.post(
            f"/v1/admin/entries/{items[0]['id']}/reverse",
            json={"reason": "Sent by mistake", "amount": 10_00},
            headers=keyed(maker.headers),
        )
        assert asked.status_code == 202, asked.text
        events = await _events(app, asked.json()["id"])
        assert _summary(events) == [("approval.requested", member.user_id)]
        assert json.loads(events[0].data) == asked.json()
        # Refused (more than the entry): no approval, no event.
        before = await _count(app, "approval.requested")
        too_much = await client.post(
            f"/v1/admin/entries/{items[0]['id']}/reverse",
            json={"reason": "Sent by mistake", "amount": 100_01},
            headers=keyed(maker.headers),
        )
        assert too_much.status_code in (409, 422), too_much.text
        assert await _count(app, "approval.requested") == before


async def _count(app: FastAPI, event_type: str) -> int:
    async with app.state.db.sessionmaker() as session:
        rows = await session.scalars(select(Event.id).where(Event.type == event_type))
        return len(list(rows))


class TestScheduledTransferEvents:
    async def test_each_run_is_told_to_the_schedules_owner(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        created = await client.post(
            "/v1/scheduled-transfers",
            json={
                "source_account_id": source["id"],
                "target_account_number": bobs["number"],
                "amount": 10_00,
                "first_run_at": first.isoformat().replace("+00:00", "Z"),
                "frequency": "once",
            },
            headers=alice.headers,
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        db = app.state.db
        assert await schedules.run_due(db, now=first - dt.timedelta(seconds=1)) == {}
        assert await _events(app, schedule_id) == []
        assert await schedules.run_due(db, now=first) == {"declined": 1}
        events = await _events(app, schedule_id)
        assert _summary(events) == [("scheduled_transfer.run", alice.user_id)]
        data = json.loads(events[0].data)
        assert data["schedule_id"] == schedule_id
        assert (data["occurrence"], data["attempt"], data["status"], data["reason"]) == (
            1,
            1,
            "declined",
            "insufficient_funds",
        )
        assert data["entry_id"] is not None
        deposited = await client.post(
            f"/v1/accounts/{source['id']}/deposits",
            json={"amount": 50_00},
            headers=keyed(alice.headers),
        )
        assert deposited.status_code == 201, deposited.text
        retry = first + dt.timedelta(seconds=600)
        assert await schedules.run_due(db, now=retry) == {"posted": 1}
        assert await schedules.run_due(db, now=retry) == {}
        events = await _events(app, schedule_id)
        assert [event.type for event in events] == ["scheduled_transfer.run"] * 2
        data = json.loads(events[1].data)
        assert (data["occurrence"], data["attempt"], data["status"], data["reason"]) == (
            1,
            2,
            "posted",
            None,
        )
        runs = (
            await client.get(f"/v1/scheduled-transfers/{schedule_id}", headers=alice.headers)
        ).json()["runs"]
        assert data["entry_id"] == runs[0]["entry_id"]


class TestRefundAndInterestEvents:
    async def test_a_refund_tells_the_card_owner_once(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=100_00)
        card = await issue_card(client, member, account["id"])
        authorization = await approved(client, card, 40_00)
        url = f"/v1/card-authorizations/{authorization}/refund"
        early = await client.post(url, headers={**NETWORK, "Idempotency-Key": "e-1"})
        assert early.status_code == 409
        assert await _events(app, authorization, "card.authorization.refunded") == []
        assert (await capture(client, authorization, 30_00)).status_code == 200
        refunded = await client.post(
            url, json={"amount": 10_00}, headers={**NETWORK, "Idempotency-Key": "e-2"}
        )
        assert refunded.status_code == 201, refunded.text
        replay = await client.post(
            url, json={"amount": 10_00}, headers={**NETWORK, "Idempotency-Key": "e-2"}
        )
        assert replay.headers.get("Idempotent-Replayed") == "true"
        over = await client.post(
            url, json={"amount": 20_01}, headers={**NETWORK, "Idempotency-Key": "e-3"}
        )
        assert over.status_code == 409
        events = await _events(app, authorization, "card.authorization.refunded")
        assert _summary(events) == [("card.authorization.refunded", member.user_id)]
        shown = await client.get(f"/v1/card-authorizations/{authorization}", headers=NETWORK)
        assert json.loads(events[0].data) == shown.json()
        entry = await _events(app, refunded.json()["id"])
        assert _summary(entry) == [("card_refund.posted", member.user_id)]
        data = json.loads(entry[0].data)
        assert (data["account_id"], data["amount"], data["kind"]) == (
            account["id"],
            10_00,
            "card_refund",
        )
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_posted_interest_is_told_to_the_accounts_owner(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        app.state.clock = lambda: dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
        account = await open_account(client, member, type="savings", balance_minor=10_000_000)
        app.state.clock = lambda: dt.datetime(2025, 4, 2, 10, 0, tzinfo=dt.UTC)
        await interest.accrue(app.state.db, through=dt.date(2025, 3, 31))
        await interest.post_month(app.state.db, month="2025-03")
        await interest.post_month(app.state.db, month="2025-03")
        async with app.state.db.sessionmaker() as session:
            events = list(await session.scalars(select(Event).where(Event.type.like("interest.%"))))
        mine = [event for event in events if event.account_id == uuid.UUID(account["id"])]
        assert _summary(mine) == [("interest.posted", member.user_id)]
        data = json.loads(mine[0].data)
        assert (data["amount"], data["kind"], data["description"]) == (
            11_096,
            "interest",
            "Interest 2025-03",
        )
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
