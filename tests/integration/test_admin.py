from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.audit.models import AuditEvent
from tests.factories import keyed, make_member, make_staff, open_account


class TestStaffViews:
    async def test_support_lists_and_reads_accounts_and_the_reads_are_audited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        support = await make_staff(client, app, "support")
        account = await open_account(client, member, balance_minor=700)
        listing = await client.get(
            "/v1/admin/accounts", params={"owner_id": member.user_id}, headers=support.headers
        )
        assert listing.status_code == 200
        assert [item["id"] for item in listing.json()["items"]] == [account["id"]]
        assert listing.json()["items"][0]["owner_id"] == member.user_id
        one = await client.get(f"/v1/admin/accounts/{account['id']}", headers=support.headers)
        assert one.status_code == 200
        assert one.json()["balance"] == 700
        async with app.state.db.sessionmaker() as session:
            events = (
                await session.execute(
                    select(AuditEvent.event_type).where(
                        AuditEvent.actor_id == uuid.UUID(support.user_id)
                    )
                )
            ).scalars()
            assert {"admin.accounts_listed", "admin.account_viewed"} <= set(events)

    async def test_account_listing_pages_with_a_cursor(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        support = await make_staff(client, app, "support")
        opened = {(await open_account(client, member))["id"] for _ in range(5)}
        seen: list[str] = []
        cursor = None
        while True:
            params = {
                "owner_id": member.user_id,
                "limit": 2,
                **({"cursor": cursor} if cursor else {}),
            }
            page = (
                await client.get("/v1/admin/accounts", params=params, headers=support.headers)
            ).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(opened)

    async def test_transactions_across_the_bank_filter_by_account_and_status(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        support = await make_staff(client, app, "support")
        account = await open_account(client, member, balance_minor=100)
        await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 101},
            headers=keyed(member.headers),
        )
        response = await client.get(
            "/v1/admin/transactions",
            params={"account_id": account["id"], "status": "declined"},
            headers=support.headers,
        )
        assert response.status_code == 200
        items = response.json()["items"]
        assert [(item["kind"], item["decline_reason"]) for item in items] == [
            ("withdrawal", "insufficient_funds")
        ]
        everything = await client.get(
            "/v1/admin/transactions", params={"account_id": account["id"]}, headers=support.headers
        )
        assert [item["status"] for item in everything.json()["items"]] == ["declined", "posted"]

    async def test_an_accounts_entries_carry_its_balance_after_each(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        support = await make_staff(client, app, "support")
        mine = await open_account(client, member, balance_minor=100_00)
        other = await open_account(client, member, balance_minor=5_00)
        moved = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": mine["id"],
                "target_account_id": other["id"],
                "amount": 30_00,
            },
            headers=keyed(member.headers),
        )
        assert moved.status_code == 201, moved.text
        declined = await client.post(
            f"/v1/accounts/{mine['id']}/withdrawals",
            json={"amount": 1_000_00},
            headers=keyed(member.headers),
        )
        assert declined.status_code == 409

        def balances(page: httpx.Response) -> list[tuple[str, int | None]]:
            return [(item["status"], item["balance_after"]) for item in page.json()["items"]]

        for account, expected in (
            (mine, [("declined", None), ("posted", 70_00), ("posted", 100_00)]),
            (other, [("posted", 35_00), ("posted", 5_00)]),
        ):
            page = await client.get(
                "/v1/admin/transactions",
                params={"account_id": account["id"]},
                headers=support.headers,
            )
            assert balances(page) == expected
        # Across the bank, no one account's view: no balance.
        everyone = await client.get("/v1/admin/transactions", headers=support.headers)
        assert {item["balance_after"] for item in everyone.json()["items"]} == {None}

    async def test_members_cannot_use_staff_views(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        for path in (
            "/v1/admin/accounts",
            f"/v1/admin/accounts/{account['id']}",
            "/v1/admin/transactions",
        ):
            response = await client.get(path, headers=member.headers)
            assert response.status_code == 403

    async def test_an_unknown_account_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        support = await make_staff(client, app, "support")
        response = await client.get(f"/v1/admin/accounts/{uuid.uuid4()}", headers=support.headers)
        assert response.status_code == 404


class TestFreezing:
    @pytest.mark.parametrize("role", ["member", "support"])
    async def test_only_admins_freeze(
        self, client: httpx.AsyncClient, app: FastAPI, role: str
    ) -> None:
        member = await make_member(client)
        caller = member if role == "member" else await make_staff(client, app, role)
        account = await open_account(client, member)
        response = await client.post(
            f"/v1/admin/accounts/{account['id']}/freeze", headers=caller.headers
        )
        assert response.status_code == 403
        state = await client.get(f"/v1/accounts/{account['id']}", headers=member.headers)
        assert state.json()["status"] == "active"

    async def test_freezing_twice_or_unfreezing_an_active_account_conflicts(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        account = await open_account(client, member)
        path = f"/v1/admin/accounts/{account['id']}"
        assert (await client.post(f"{path}/unfreeze", headers=admin.headers)).status_code == 409
        assert (await client.post(f"{path}/freeze", headers=admin.headers)).status_code == 200
        again = await client.post(f"{path}/freeze", headers=admin.headers)
        assert again.status_code == 409
        assert again.json()["code"] == "account_status_conflict"
        async with app.state.db.sessionmaker() as session:
            events = (
                await session.execute(
                    select(AuditEvent.event_type).where(AuditEvent.target_id == account["id"])
                )
            ).scalars()
            assert "account.frozen" in set(events)
