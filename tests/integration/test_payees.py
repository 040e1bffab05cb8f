"""Payees: saved beneficiaries, transfers to them, and the new-payee control."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.audit.models import AuditEvent
from banking.core.db import utcnow
from tests.factories import Member, make_member, open_account
from tests.integration.test_payments import (
    assert_ledger_verifies,
    balance_of,
    declined,
    key_headers,
)

COOLDOWN_S = 60
LIMIT = 50_00


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        "new_payee_cooldown_s": COOLDOWN_S,
        "new_payee_limit_minor": LIMIT,
        **getattr(request, "param", {}),
    }


async def add_payee(
    client: httpx.AsyncClient, member: Member, number: str, name: str = "Landlord", **body: Any
) -> httpx.Response:
    return await client.post(
        "/v1/payees",
        json={"name": name, "account_number": number, **body},
        headers=member.headers,
    )


async def pay(
    client: httpx.AsyncClient, member: Member, source: dict[str, Any], payee_id: str, amount: int
) -> httpx.Response:
    return await client.post(
        "/v1/transfers",
        json={"source_account_id": source["id"], "payee_id": payee_id, "amount": amount},
        headers=key_headers(member),
    )


def _bad_number(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


class TestPayees:
    async def test_a_payee_shows_the_masked_holder_and_is_audited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await make_member(client)
        bob = await make_member(client, first_name="Robert", last_name="Stone")
        bobs = await open_account(client, bob)

        response = await add_payee(client, alice, bobs["number"], nickname="Bob")
        assert response.status_code == 201, response.text
        payee = response.json()
        assert payee["holder_name"] == "R*** S***"
        assert payee["account_number"] == bobs["number"]
        assert payee["currency"] == "USD"
        assert payee["nickname"] == "Bob"
        assert payee["cooldown_ends_at"] is not None

        async with app.state.db.sessionmaker() as session:
            events = (
                await session.execute(
                    select(AuditEvent.event_type, AuditEvent.actor_id).where(
                        AuditEvent.target_id == payee["id"]
                    )
                )
            ).all()
        assert [(kind, str(actor)) for kind, actor in events] == [("payee.added", alice.user_id)]

        listed = await client.get("/v1/payees", headers=alice.headers)
        assert [item["id"] for item in listed.json()["items"]] == [payee["id"]]
        assert (await client.get("/v1/payees", headers=bob.headers)).json()["items"] == []

    async def test_numbers_are_checked(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        bobs = await open_account(client, bob)
        bad_digit = await add_payee(client, alice, _bad_number(bobs["number"]))
        assert bad_digit.status_code == 422
        unknown = await add_payee(client, alice, "0" * 12)
        assert unknown.status_code == 404
        assert (await add_payee(client, alice, bobs["number"])).status_code == 201
        again = await add_payee(client, alice, bobs["number"], name="Twice")
        assert again.status_code == 409
        assert again.json()["code"] == "payee_exists"

    async def test_another_members_payee_is_unknown(self, client: httpx.AsyncClient) -> None:
        alice, bob, carol = [await make_member(client) for _ in range(3)]
        carols = await open_account(client, carol)
        bobs = await open_account(client, bob, balance_minor=10_00)
        payee = (await add_payee(client, alice, carols["number"])).json()
        for method in ("GET", "DELETE"):
            response = await client.request(
                method, f"/v1/payees/{payee['id']}", headers=bob.headers
            )
            assert response.status_code == 404
        patched = await client.patch(
            f"/v1/payees/{payee['id']}", json={"name": "Mine"}, headers=bob.headers
        )
        assert patched.status_code == 404
        stolen = await pay(client, bob, bobs, payee["id"], 1_00)
        assert stolen.status_code == 404
        assert stolen.json()["detail"] == "No such payee."
        unknown = await pay(client, bob, bobs, str(uuid.uuid4()), 1_00)
        assert unknown.status_code == 404

    async def test_rename_and_delete(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        alice, bob = await make_member(client), await make_member(client)
        bobs = await open_account(client, bob)
        payee = (await add_payee(client, alice, bobs["number"], nickname="B")).json()
        patched = await client.patch(
            f"/v1/payees/{payee['id']}",
            json={"name": "Rent", "nickname": None},
            headers=alice.headers,
        )
        assert patched.status_code == 200
        assert (patched.json()["name"], patched.json()["nickname"]) == ("Rent", None)
        deleted = await client.delete(f"/v1/payees/{payee['id']}", headers=alice.headers)
        assert deleted.status_code == 204
        gone = await client.get(f"/v1/payees/{payee['id']}", headers=alice.headers)
        assert gone.status_code == 404
        async with app.state.db.sessionmaker() as session:
            kinds = (
                await session.execute(
                    select(AuditEvent.event_type)
                    .where(AuditEvent.target_id == payee["id"])
                    .order_by(AuditEvent.id)
                )
            ).scalars()
            assert list(kinds) == ["payee.added", "payee.updated", "payee.deleted"]


class TestTransfersToPayees:
    async def test_a_new_payee_above_the_limit_is_declined_and_recorded_until_the_cooldown_ends(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=1_000_00)
        bobs = await open_account(client, bob)
        payee = (await add_payee(client, alice, bobs["number"])).json()

        small = await pay(client, alice, source, payee["id"], LIMIT)
        assert small.status_code == 201, small.text
        assert small.json()["target_account_number"].endswith(bobs["number"][-4:])
        assert small.json()["target_account_id"] is None

        large = await pay(client, alice, source, payee["id"], LIMIT + 1)
        assert large.status_code == 409
        assert large.json()["code"] == "new_payee_limit"
        recorded = await declined(client, alice, source)
        assert [item["decline_reason"] for item in recorded] == ["new_payee_limit"]
        assert await balance_of(client, alice, source) == 1_000_00 - LIMIT

        # Once the cooldown is over, the same transfer goes through.
        later = utcnow() + dt.timedelta(seconds=COOLDOWN_S + 1)
        app.state.clock = lambda: later
        after = await pay(client, alice, source, payee["id"], LIMIT + 1)
        assert after.status_code == 201, after.text
        assert await balance_of(client, bob, bobs) == 2 * LIMIT + 1
        await assert_ledger_verifies(app)

    @pytest.mark.parametrize(
        "settings_overrides",
        [{"new_payee_cooldown_s": 0}, {"new_payee_limit_minor": 0}],
        indirect=True,
    )
    async def test_either_setting_at_zero_turns_the_control_off(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=1_000_00)
        bobs = await open_account(client, bob)
        payee = (await add_payee(client, alice, bobs["number"])).json()
        assert payee["cooldown_ends_at"] is None
        assert (await pay(client, alice, source, payee["id"], 900_00)).status_code == 201

    async def test_exactly_one_target(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=10_00)
        bobs = await open_account(client, bob)
        payee = (await add_payee(client, alice, bobs["number"])).json()
        both = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": source["id"],
                "payee_id": payee["id"],
                "target_account_number": bobs["number"],
                "amount": 1,
            },
            headers=key_headers(alice),
        )
        assert both.status_code == 422
