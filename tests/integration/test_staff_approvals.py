"""Four-eyes approval of staff actions that lift a protection: unfreezing an account and
raising its daily outgoing limit above the bank's default wait for a second admin, execute
once, and leave the account as it was when rejected, expired or changed meanwhile."""

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
from banking.audit.models import AuditEvent
from banking.events.models import Event
from tests.factories import Member, keyed, make_member, make_staff, open_account

DEFAULT_LIMIT = 1_000_00


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"daily_outgoing_limit_minor": DEFAULT_LIMIT, "approval_ttl_s": 3600}


class World:
    def __init__(self, **parts: Any) -> None:
        self.__dict__.update(parts)


@pytest.fixture
async def world(client: httpx.AsyncClient, app: FastAPI) -> World:
    member = await make_member(client)
    other = await make_member(client)
    account = await open_account(client, member, balance_minor=5_000_00)
    target = await open_account(client, other)
    maker = await make_staff(client, app, "admin")
    checker = await make_staff(client, app, "admin")
    return World(
        member=member, other=other, account=account, target=target, maker=maker, checker=checker
    )


async def _account(client: httpx.AsyncClient, staff: Member, account_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.get(f"/v1/admin/accounts/{account_id}", headers=staff.headers)
    ).json()
    return body


async def _freeze(client: httpx.AsyncClient, w: World) -> None:
    frozen = await client.post(
        f"/v1/admin/accounts/{w.account['id']}/freeze",
        json={"reason": "Card fraud report"},
        headers=w.maker.headers,
    )
    assert frozen.status_code == 200, frozen.text


async def _ask_unfreeze(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post(
        f"/v1/admin/accounts/{w.account['id']}/unfreeze",
        json={"reason": "Owner verified by phone"},
        headers=w.maker.headers,
    )


async def _set_limit(
    client: httpx.AsyncClient, staff: Member, account_id: str, limit: int | None
) -> httpx.Response:
    return await client.patch(
        f"/v1/admin/accounts/{account_id}/limits",
        json={"daily_outgoing_limit": limit, "reason": "Asked by the owner"},
        headers=staff.headers,
    )


async def _audit(app: FastAPI, target_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    async with app.state.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(AuditEvent.event_type, AuditEvent.actor_id, AuditEvent.details)
                .where(AuditEvent.target_id == target_id)
                .order_by(AuditEvent.id)
            )
        ).all()
    return [(event, str(actor), json.loads(details or "{}")) for event, actor, details in rows]


async def _events(app: FastAPI, subject_id: str) -> list[tuple[str, str]]:
    async with app.state.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Event.type, Event.owner_id)
                .where(Event.subject_id == subject_id)
                .order_by(Event.id)
            )
        ).all()
    return [(event_type, str(owner)) for event_type, owner in rows]


async def _withdraw(client: httpx.AsyncClient, w: World, amount: int) -> httpx.Response:
    return await client.post(
        f"/v1/accounts/{w.account['id']}/withdrawals",
        json={"amount": amount},
        headers=keyed(w.member.headers),
    )


class TestUnfreeze:
    async def test_an_unfreeze_waits_for_a_second_admin_and_executes_once(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        await _freeze(client, w)
        asked = await _ask_unfreeze(client, w)
        assert asked.status_code == 202, asked.text
        pending = asked.json()
        assert (pending["kind"], pending["status"]) == ("account_unfreeze", "pending_approval")
        assert pending["source_account_id"] == w.account["id"]
        assert (pending["maker_id"], pending["owner_id"]) == (w.maker.user_id, None)
        assert (pending["amount"], pending["description"]) == (0, "Owner verified by phone")
        # Still frozen until a second admin approves.
        assert (await _account(client, w.maker, w.account["id"]))["status"] == "frozen"
        assert (await _withdraw(client, w, 1_00)).json()["code"] == "account_frozen"
        url = f"/v1/approvals/{pending['id']}"
        own = await client.post(f"{url}/approve", headers=w.maker.headers)
        assert (own.status_code, own.json()["code"]) == (409, "self_approval")
        support = await make_staff(client, app, "support")
        assert (await client.post(f"{url}/approve", headers=support.headers)).status_code == 403
        # Staff-only: the member neither sees nor decides it.
        assert (await client.get(url, headers=w.member.headers)).status_code == 404
        owner = await client.post(f"{url}/approve", headers=w.member.headers)
        assert (owner.status_code, owner.json()["code"]) == (409, "self_approval")
        approved = await client.post(
            f"{url}/approve", json={"reason": "Checked"}, headers=w.checker.headers
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "executed"
        assert approved.json()["decided_by"] == w.checker.user_id
        assert (await _account(client, w.maker, w.account["id"]))["status"] == "active"
        assert (await _withdraw(client, w, 1_00)).status_code == 201
        again = await client.post(f"{url}/approve", headers=w.checker.headers)
        assert (again.status_code, again.json()["code"]) == (409, "approval_not_pending")

        audit = await _audit(app, pending["id"])
        assert [(event, actor) for event, actor, _ in audit] == [
            ("approval.requested", w.maker.user_id),
            ("approval.approved", w.checker.user_id),
        ]
        assert audit[1][2]["maker_id"] == w.maker.user_id
        assert audit[1][2]["checker_id"] == w.checker.user_id
        unfrozen = [
            row for row in await _audit(app, w.account["id"]) if row[0] == "account.unfrozen"
        ]
        assert len(unfrozen) == 1
        _, actor, details = unfrozen[0]
        assert actor == w.checker.user_id
        assert (details["maker_id"], details["approval_id"]) == (w.maker.user_id, pending["id"])
        # Events like every approval kind (staff-only: the maker's), and the member's own.
        assert await _events(app, pending["id"]) == [
            ("approval.requested", w.maker.user_id),
            ("approval.approved", w.maker.user_id),
        ]
        account_events = [
            e for e in await _events(app, w.account["id"]) if e[0] != "account.opened"
        ]
        assert account_events == [
            ("account.frozen", w.member.user_id),
            ("account.unfrozen", w.member.user_id),
        ]

    async def test_rejection_and_expiry_leave_the_account_frozen(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        await _freeze(client, w)
        first = (await _ask_unfreeze(client, w)).json()
        rejected = await client.post(
            f"/v1/approvals/{first['id']}/reject",
            json={"reason": "Not verified"},
            headers=w.checker.headers,
        )
        assert rejected.json()["status"] == "rejected"
        assert (await _account(client, w.maker, w.account["id"]))["status"] == "frozen"
        second = (await _ask_unfreeze(client, w)).json()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        app.state.clock = lambda: later
        assert await approvals.expire_due(app.state.db) == 1
        assert (await _account(client, w.maker, w.account["id"]))["status"] == "frozen"
        lapsed = await client.get(f"/v1/approvals/{second['id']}", headers=w.checker.headers)
        assert lapsed.json()["status"] == "expired"
        assert [
            e for e, _, _ in await _audit(app, w.account["id"]) if e == "account.unfrozen"
        ] == []

    async def test_one_unfreeze_waits_at_a_time_and_only_for_a_frozen_account(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        w = world
        active = await _ask_unfreeze(client, w)
        assert (active.status_code, active.json()["code"]) == (409, "account_status_conflict")
        await _freeze(client, w)
        assert (await _ask_unfreeze(client, w)).status_code == 202
        twice = await _ask_unfreeze(client, w)
        assert (twice.status_code, twice.json()["code"]) == (409, "approval_already_pending")
        # The staff account page finds what waits for it.
        listed = await client.get(
            "/v1/approvals",
            params={"account_id": w.account["id"], "status": "pending_approval"},
            headers=w.checker.headers,
        )
        assert [item["kind"] for item in listed.json()["items"]] == ["account_unfreeze"]
        other = await client.get(
            "/v1/approvals", params={"account_id": w.target["id"]}, headers=w.checker.headers
        )
        assert other.json()["items"] == []
        missing = await client.post(
            f"/v1/admin/accounts/{uuid.uuid4()}/unfreeze", headers=w.maker.headers
        )
        assert missing.status_code == 404
        member = await client.post(
            f"/v1/admin/accounts/{w.account['id']}/unfreeze", headers=w.member.headers
        )
        assert member.status_code == 403

    async def test_an_unfreeze_fails_when_the_account_is_no_longer_frozen(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        await _freeze(client, w)
        stale = (await _ask_unfreeze(client, w)).json()
        # Another admin's unfreeze goes through first (the stale one lapses meanwhile).
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        app.state.clock = lambda: later
        fresh = (await _ask_unfreeze(client, w)).json()
        await client.post(f"/v1/approvals/{fresh['id']}/approve", headers=w.checker.headers)
        assert (await _account(client, w.maker, w.account["id"]))["status"] == "active"
        app.state.clock = lambda: dt.datetime.now(dt.UTC)
        failed = await client.post(
            f"/v1/approvals/{stale['id']}/approve", headers=w.checker.headers
        )
        assert failed.status_code == 200, failed.text
        assert (failed.json()["status"], failed.json()["decline_reason"]) == (
            "failed",
            "account_not_frozen",
        )
        assert await _events(app, stale["id"]) == [
            ("approval.requested", w.maker.user_id),
            ("approval.failed", w.maker.user_id),
        ]


class TestDailyLimit:
    async def test_lowering_or_staying_at_the_default_applies_at_once(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        assert (await _account(client, w.maker, w.account["id"]))["daily_outgoing_limit"] == (
            DEFAULT_LIMIT
        )
        lowered = await _set_limit(client, w.maker, w.account["id"], 200_00)
        assert lowered.status_code == 200, lowered.text
        assert lowered.json()["daily_outgoing_limit"] == 200_00
        assert (await _withdraw(client, w, 300_00)).json()["code"] == "daily_limit_exceeded"
        assert (await _withdraw(client, w, 200_00)).status_code == 201
        back = await _set_limit(client, w.maker, w.account["id"], None)
        assert back.json()["daily_outgoing_limit"] == DEFAULT_LIMIT
        at_default = await _set_limit(client, w.maker, w.account["id"], DEFAULT_LIMIT)
        assert at_default.status_code == 200
        changes = [
            row for row in await _audit(app, w.account["id"]) if row[0] == "account.limit_changed"
        ]
        assert [
            (actor, details["daily_outgoing_limit_minor"]) for _, actor, details in changes
        ] == [
            (w.maker.user_id, 200_00),
            (w.maker.user_id, None),
            (w.maker.user_id, DEFAULT_LIMIT),
        ]
        assert changes[0][2]["reason"] == "Asked by the owner"
        events = [e for e in await _events(app, w.account["id"]) if e[0] == "account.limit_changed"]
        assert events == [("account.limit_changed", w.member.user_id)] * 3

    async def test_a_raise_above_the_default_waits_for_a_second_admin(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        asked = await _set_limit(client, w.maker, w.account["id"], 3_000_00)
        assert asked.status_code == 202, asked.text
        pending = asked.json()
        assert (pending["kind"], pending["status"]) == ("daily_limit_raise", "pending_approval")
        assert (pending["daily_outgoing_limit"], pending["previous_daily_outgoing_limit"]) == (
            3_000_00,
            DEFAULT_LIMIT,
        )
        assert pending["amount"] == 3_000_00
        assert (await _account(client, w.maker, w.account["id"]))["daily_outgoing_limit"] == (
            DEFAULT_LIMIT
        )
        assert (await _withdraw(client, w, 2_000_00)).json()["code"] == "daily_limit_exceeded"
        twice = await _set_limit(client, w.maker, w.account["id"], 4_000_00)
        assert (twice.status_code, twice.json()["code"]) == (409, "approval_already_pending")
        url = f"/v1/approvals/{pending['id']}"
        own = await client.post(f"{url}/approve", headers=w.maker.headers)
        assert (own.status_code, own.json()["code"]) == (409, "self_approval")
        approved = await client.post(f"{url}/approve", headers=w.checker.headers)
        assert approved.json()["status"] == "executed", approved.text
        assert (await _account(client, w.maker, w.account["id"]))["daily_outgoing_limit"] == (
            3_000_00
        )
        assert (await _withdraw(client, w, 2_000_00)).status_code == 201
        changes = [
            row for row in await _audit(app, w.account["id"]) if row[0] == "account.limit_changed"
        ]
        assert len(changes) == 1
        _, actor, details = changes[0]
        assert actor == w.checker.user_id
        assert (details["maker_id"], details["checker_id"]) == (w.maker.user_id, w.checker.user_id)
        assert await _events(app, pending["id"]) == [
            ("approval.requested", w.maker.user_id),
            ("approval.approved", w.maker.user_id),
        ]
        # Lowering a raised limit, even above the default, applies at once.
        lowered = await _set_limit(client, w.maker, w.account["id"], 2_500_00)
        assert (lowered.status_code, lowered.json()["daily_outgoing_limit"]) == (200, 2_500_00)

    async def test_a_raise_fails_if_the_limit_changed_meanwhile_and_rejection_changes_nothing(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        w = world
        first = (await _set_limit(client, w.maker, w.account["id"], 3_000_00)).json()
        rejected = await client.post(
            f"/v1/approvals/{first['id']}/reject", json={"reason": "No"}, headers=w.checker.headers
        )
        assert rejected.json()["status"] == "rejected"
        assert (await _account(client, w.maker, w.account["id"]))["daily_outgoing_limit"] == (
            DEFAULT_LIMIT
        )
        second = (await _set_limit(client, w.maker, w.account["id"], 3_000_00)).json()
        # A lowering meanwhile (a fraud response, say) is not undone by the raise.
        assert (await _set_limit(client, w.checker, w.account["id"], 100_00)).status_code == 200
        failed = await client.post(
            f"/v1/approvals/{second['id']}/approve", headers=w.checker.headers
        )
        assert (failed.json()["status"], failed.json()["decline_reason"]) == (
            "failed",
            "limit_changed",
        )
        assert (await _account(client, w.maker, w.account["id"]))["daily_outgoing_limit"] == 100_00

    async def test_limits_are_for_admins_and_validated(
        self, client: httpx.AsyncClient, app: FastAPI, world: World
    ) -> None:
        w = world
        support = await make_staff(client, app, "support")
        assert (await _set_limit(client, support, w.account["id"], 100_00)).status_code == 403
        assert (await _set_limit(client, w.member, w.account["id"], 100_00)).status_code == 403
        for body in (
            {"daily_outgoing_limit": 0, "reason": "x"},
            {"daily_outgoing_limit": "100", "reason": "x"},
            {"daily_outgoing_limit": 100},
            {"daily_outgoing_limit": 100, "reason": ""},
        ):
            bad = await client.patch(
                f"/v1/admin/accounts/{w.account['id']}/limits", json=body, headers=w.maker.headers
            )
            assert bad.status_code == 422, body
        missing = await _set_limit(client, w.maker, str(uuid.uuid4()), 100_00)
        assert missing.status_code == 404
