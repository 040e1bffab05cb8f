"""Four-eyes approvals of large transfers: 202 with a hold, approve (executed once, rules
checked again), reject and expiry (hold released), self-approval refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.approvals import service as approvals
from banking.audit.models import AuditEvent
from tests.factories import Member, keyed, make_member, make_staff, open_account
from tests.integration.test_ledger_verify import run_verify

THRESHOLD = 50_00


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"approval_threshold_minor": THRESHOLD, "approval_ttl_s": 3600}


async def _transfer(
    client: httpx.AsyncClient, member: Member, source: dict[str, Any], target: dict[str, Any],
    amount: int, key: str | None = None,
) -> httpx.Response:  # fmt: skip
    return await client.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": amount,
        },
        headers=keyed(member.headers, key),
    )


async def _balance(client: httpx.AsyncClient, member: Member, account_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.get(f"/v1/accounts/{account_id}/balance", headers=member.headers)
    ).json()
    return body


class World:
    def __init__(self, **parts: Any) -> None:
        self.__dict__.update(parts)


@pytest.fixture
async def world(client: httpx.AsyncClient, app: FastAPI) -> World:
    payer = await make_member(client)
    payee = await make_member(client)
    source = await open_account(client, payer, balance_minor=200_00)
    target = await open_account(client, payee)
    checker = await make_staff(client, app, "admin")
    return World(payer=payer, payee=payee, source=source, target=target, checker=checker)


class TestLargeTransfers:
    async def test_a_transfer_above_the_threshold_waits_with_the_amount_held(
        self, client: httpx.AsyncClient, world: World, database_url: str
    ) -> None:
        w = world
        small = await _transfer(client, w.payer, w.source, w.target, THRESHOLD)
        assert small.status_code == 201, small.text
        response = await _transfer(client, w.payer, w.source, w.target, 120_00, key="big-1")
        assert response.status_code == 202, response.text
        pending = response.json()
        assert pending["status"] == "pending_approval"
        assert pending["held_amount"] == 120_00
        assert pending["target_account_number"].endswith(w.target["number"][-4:])
        balance = await _balance(client, w.payer, w.source["id"])
        assert (balance["balance"], balance["available_balance"]) == (150_00, 30_00)
        # The hold stops the money being spent twice meanwhile.
        spend = await _transfer(client, w.payer, w.source, w.target, 40_00)
        assert spend.status_code == 409
        assert spend.json()["code"] == "insufficient_funds"
        replay = await _transfer(client, w.payer, w.source, w.target, 120_00, key="big-1")
        assert replay.status_code == 202
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert replay.json()["id"] == pending["id"]
        mine = (await client.get("/v1/approvals", headers=w.payer.headers)).json()["items"]
        assert [item["id"] for item in mine] == [pending["id"]]
        theirs = (await client.get("/v1/approvals", headers=w.payee.headers)).json()["items"]
        assert theirs == []
        queue = await client.get(
            "/v1/approvals",
            params={"status": "pending_approval", "kind": "large_transfer"},
            headers=w.checker.headers,
        )
        assert pending["id"] in [item["id"] for item in queue.json()["items"]]
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_approval_executes_once_and_audits_both_people(
        self, client: httpx.AsyncClient, world: World, app: FastAPI, database_url: str
    ) -> None:
        w = world
        pending = (await _transfer(client, w.payer, w.source, w.target, 120_00)).json()
        url = f"/v1/approvals/{pending['id']}"
        # The member whose money it is, another member, support: none may approve.
        refused = await client.post(f"{url}/approve", headers=w.payer.headers)
        assert (refused.status_code, refused.json()["code"]) == (409, "self_approval")
        payee = await client.post(f"{url}/approve", headers=w.payee.headers)
        assert (payee.status_code, payee.json()["code"]) == (409, "self_approval")
        outsider = await make_member(client)
        stranger = await client.post(f"{url}/approve", headers=outsider.headers)
        assert stranger.status_code == 404
        support = await make_staff(client, app, "support")
        supported = await client.post(f"{url}/approve", headers=support.headers)
        assert supported.status_code == 403
        approved = await client.post(f"{url}/approve", headers=w.checker.headers)
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["status"] == "executed"
        assert body["decided_by"] == w.checker.user_id
        assert body["held_amount"] == 0
        assert body["entry_id"]
        again = await client.post(f"{url}/approve", headers=w.checker.headers)
        assert again.status_code == 409
        assert again.json()["code"] == "approval_not_pending"
        payer = await _balance(client, w.payer, w.source["id"])
        assert (payer["balance"], payer["available_balance"]) == (80_00, 80_00)
        assert (await _balance(client, w.payee, w.target["id"]))["balance"] == 120_00
        history = (
            await client.get(f"/v1/accounts/{w.source['id']}/transactions", headers=w.payer.headers)
        ).json()["items"]
        assert history[0]["id"] == body["entry_id"]
        assert history[0]["kind"] == "transfer"
        async with app.state.db.sessionmaker() as session:
            events = (
                await session.execute(
                    select(AuditEvent.event_type, AuditEvent.actor_id).where(
                        AuditEvent.target_id == pending["id"]
                    )
                )
            ).all()
        assert {(event, str(actor)) for event, actor in events} >= {
            ("approval.requested", w.payer.user_id),
            ("approval.approved", w.checker.user_id),
        }
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_the_maker_cannot_approve_their_own_request(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        maker = await make_member(client)
        payee = await make_member(client)
        source = await open_account(client, maker, balance_minor=200_00)
        target = await open_account(client, payee)
        # A member with money who is then made an admin: still not their own checker.
        from banking.identity import service as identity
        from banking.identity.models import Role
        from tests.factories import login

        async with app.state.db.sessionmaker() as session:
            await identity.set_role(session, email=maker.email, role=Role.admin)
        tokens = (await login(client, maker.email, maker.password)).json()
        maker.access_token = tokens["access_token"]
        pending = (await _transfer(client, maker, source, target, 100_00)).json()
        refused = await client.post(f"/v1/approvals/{pending['id']}/approve", headers=maker.headers)
        assert refused.status_code == 409
        assert refused.json()["code"] == "self_approval"
        rejected = await client.post(
            f"/v1/approvals/{pending['id']}/reject", json={"reason": "x"}, headers=maker.headers
        )
        assert rejected.json()["code"] == "self_approval"

    async def test_rejection_releases_the_hold(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        w = world
        pending = (await _transfer(client, w.payer, w.source, w.target, 120_00)).json()
        url = f"/v1/approvals/{pending['id']}/reject"
        missing = await client.post(url, json={}, headers=w.checker.headers)
        assert missing.status_code == 422
        rejected = await client.post(url, json={"reason": "Unusual"}, headers=w.checker.headers)
        assert rejected.status_code == 200, rejected.text
        assert (rejected.json()["status"], rejected.json()["reason"]) == ("rejected", "Unusual")
        payer = await _balance(client, w.payer, w.source["id"])
        assert (payer["balance"], payer["available_balance"]) == (200_00, 200_00)
        late = await client.post(
            f"/v1/approvals/{pending['id']}/approve", headers=w.checker.headers
        )
        assert late.json()["code"] == "approval_not_pending"

    async def test_approval_checks_the_rules_again_and_a_decline_releases_the_hold(
        self, client: httpx.AsyncClient, world: World, database_url: str
    ) -> None:
        w = world
        pending = (await _transfer(client, w.payer, w.source, w.target, 120_00)).json()
        frozen = await client.post(
            f"/v1/admin/accounts/{w.source['id']}/freeze", headers=w.checker.headers
        )
        assert frozen.status_code == 200
        approved = await client.post(
            f"/v1/approvals/{pending['id']}/approve", headers=w.checker.headers
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "failed"
        assert approved.json()["decline_reason"] == "account_frozen"
        payer = await _balance(client, w.payer, w.source["id"])
        assert (payer["balance"], payer["available_balance"]) == (200_00, 200_00)
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_expiry_releases_the_hold(
        self, client: httpx.AsyncClient, world: World, app: FastAPI
    ) -> None:
        w = world
        pending = (await _transfer(client, w.payer, w.source, w.target, 120_00)).json()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        app.state.clock = lambda: later
        assert await approvals.expire_due(app.state.db) == 1
        payer = await _balance(client, w.payer, w.source["id"])
        assert payer["available_balance"] == 200_00
        late = await client.post(
            f"/v1/approvals/{pending['id']}/approve", headers=w.checker.headers
        )
        assert late.json()["code"] == "approval_not_pending"
        # A decision on a lapsed one expires it there and then.
        app.state.clock = lambda: dt.datetime.now(dt.UTC)
        second = (await _transfer(client, w.payer, w.source, w.target, 60_00)).json()
        app.state.clock = lambda: later + dt.timedelta(hours=2)
        lapsed = await client.post(
            f"/v1/approvals/{second['id']}/approve", headers=w.checker.headers
        )
        assert lapsed.status_code == 409
        assert lapsed.json()["code"] == "approval_expired"
        one = (await client.get(f"/v1/approvals/{second['id']}", headers=w.payer.headers)).json()
        assert one["status"] == "expired"
        assert (await _balance(client, w.payer, w.source["id"]))["available_balance"] == 200_00

    async def test_staff_raise_an_accounts_threshold(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        w = world
        url = f"/v1/admin/accounts/{w.source['id']}/approval-threshold"
        low = await client.put(url, json={"threshold": THRESHOLD - 1}, headers=w.checker.headers)
        assert low.status_code == 422
        assert low.json()["code"] == "threshold_below_default"
        raised = await client.put(url, json={"threshold": 150_00}, headers=w.checker.headers)
        assert raised.status_code == 200, raised.text
        posted = await _transfer(client, w.payer, w.source, w.target, 120_00)
        assert posted.status_code == 201, posted.text
        unknown = await client.get(f"/v1/approvals/{uuid.uuid4()}", headers=w.payer.headers)
        assert unknown.status_code == 404


async def _pay_payee(
    client: httpx.AsyncClient, member: Member, source: dict[str, Any], payee_id: str, amount: int
) -> httpx.Response:
    return await client.post(
        "/v1/transfers",
        json={"source_account_id": source["id"], "payee_id": payee_id, "amount": amount},
        headers=keyed(member.headers),
    )


class TestLargeTransfersToPayees:
    """A transfer by payee above the threshold takes the approval path like one by number
    (it was a 500: the approval path did not look the payee up)."""

    async def test_a_large_transfer_to_a_payee_waits_for_approval_and_pays_the_payee(
        self, client: httpx.AsyncClient, world: World, database_url: str
    ) -> None:
        w = world
        added = await client.post(
            "/v1/payees",
            json={"name": "Landlord", "account_number": w.target["number"]},
            headers=w.payer.headers,
        )
        assert added.status_code == 201, added.text
        # Above the approval threshold, within the new-payee limit (100,000 by default).
        response = await _pay_payee(client, w.payer, w.source, added.json()["id"], 120_00)
        assert response.status_code == 202, response.text
        pending = response.json()
        assert pending["status"] == "pending_approval"
        assert pending["target_account_number"].endswith(w.target["number"][-4:])
        approved = await client.post(
            f"/v1/approvals/{pending['id']}/approve", headers=w.checker.headers
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "executed"
        assert (await _balance(client, w.payee, w.target["id"]))["balance"] == 120_00
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_an_unknown_payee_is_404_and_the_new_payee_limit_still_declines(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        w = world
        unknown = await _pay_payee(client, w.payer, w.source, str(uuid.uuid4()), 120_00)
        assert unknown.status_code == 404, unknown.text
        rich = await open_account(client, w.payer, balance_minor=5_000_00)
        added = await client.post(
            "/v1/payees",
            json={"name": "New", "account_number": w.target["number"]},
            headers=w.payer.headers,
        )
        over_limit = await _pay_payee(client, w.payer, rich, added.json()["id"], 2_000_00)
        assert over_limit.status_code == 409, over_limit.text
        assert over_limit.json()["code"] == "new_payee_limit"
        assert (await _balance(client, w.payer, rich["id"]))["available_balance"] == 5_000_00
