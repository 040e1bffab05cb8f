from __future__ import annotations

import json
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.audit.models import AuditEvent
from tests.factories import make_member, make_staff

ADDRESS = {
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "NW1 6XE",
    "country": "gb",
}


async def _staff_reads(app: FastAPI) -> list[AuditEvent]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.event_type == "staff.read").order_by(AuditEvent.id)
        )
        return list(rows.scalars())


class TestOwnProfile:
    async def test_a_member_reads_their_profile(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client, phone="+1 555 0100")
        response = await client.get("/v1/account-holders/me", headers=member.headers)
        assert response.status_code == 200
        body = response.json()
        assert body["user_id"] == member.user_id
        assert body["email"] == member.email
        assert body["date_of_birth"] == "1990-05-17"
        assert body["phone"] == "+1 555 0100"
        assert body["address"] is None

    async def test_a_member_changes_name_phone_and_address(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        response = await client.patch(
            "/v1/account-holders/me",
            headers=member.headers,
            json={"last_name": "King", "phone": "+44 1234 567890", "address": ADDRESS},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["first_name"] == "Ada"
        assert body["last_name"] == "King"
        assert body["address"] == {**ADDRESS, "country": "GB", "line2": None}
        again = (await client.get("/v1/account-holders/me", headers=member.headers)).json()
        assert again == body
        async with app.state.db.sessionmaker() as session:
            event = (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.event_type == "holder.updated")
                )
            ).scalar_one()
        assert json.loads(event.details) == {"fields": ["address", "last_name", "phone"]}

    async def test_null_clears_phone_and_address(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client, phone="+1 555 0100")
        await client.patch(
            "/v1/account-holders/me", headers=member.headers, json={"address": ADDRESS}
        )
        response = await client.patch(
            "/v1/account-holders/me",
            headers=member.headers,
            json={"phone": None, "address": None},
        )
        assert response.status_code == 200
        assert response.json()["phone"] is None
        assert response.json()["address"] is None

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "new@example.com"},
            {"date_of_birth": "1970-01-01"},
            {"role": "admin"},
            {"id": "00000000-0000-0000-0000-000000000001"},
            {"first_name": None},
            {"first_name": ""},
            {"phone": "call me"},
            {"address": {**ADDRESS, "country": "GBR"}},
            {"address": {**ADDRESS, "floor": 3}},
        ],
    )
    async def test_fixed_unknown_or_invalid_fields_are_422(
        self, client: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        member = await make_member(client)
        response = await client.patch("/v1/account-holders/me", headers=member.headers, json=body)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        profile = (await client.get("/v1/account-holders/me", headers=member.headers)).json()
        assert profile["email"] == member.email
        assert profile["first_name"] == "Ada"

    async def test_the_profile_needs_a_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/v1/account-holders/me")).status_code == 401
        assert (await client.patch("/v1/account-holders/me", json={})).status_code == 401


class TestStaffViews:
    async def test_staff_list_pages_through_every_holder(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        members = [await make_member(client) for _ in range(5)]
        support = await make_staff(client, app, "support")
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(10):
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = await client.get(
                "/v1/admin/account-holders", headers=support.headers, params=params
            )
            assert page.status_code == 200
            body = page.json()
            assert len(body["items"]) <= 2
            seen += [item["email"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        expected = {member.email for member in members} | {support.email}
        assert len(seen) == len(set(seen)) == len(expected)
        assert set(seen) == expected
        assert len(await _staff_reads(app)) == 3

    async def test_staff_filter_by_email_and_by_name(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        target = await make_member(client, first_name="Katherine", last_name="Johnson")
        await make_member(client)
        admin = await make_staff(client, app, "admin")
        by_email = await client.get(
            "/v1/admin/account-holders",
            headers=admin.headers,
            params={"email": target.email.upper()},
        )
        assert [item["user_id"] for item in by_email.json()["items"]] == [target.user_id]
        by_name = await client.get(
            "/v1/admin/account-holders", headers=admin.headers, params={"name": "johns"}
        )
        assert [item["user_id"] for item in by_name.json()["items"]] == [target.user_id]
        wildcard = await client.get(
            "/v1/admin/account-holders", headers=admin.headers, params={"name": "%"}
        )
        assert wildcard.json()["items"] == []

    async def test_staff_read_one_holder_and_the_read_is_audited(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        support = await make_staff(client, app, "support")
        holder_id = (await client.get("/v1/account-holders/me", headers=member.headers)).json()[
            "id"
        ]
        response = await client.get(
            f"/v1/admin/account-holders/{holder_id}", headers=support.headers
        )
        assert response.status_code == 200
        assert response.json()["email"] == member.email
        reads = await _staff_reads(app)
        assert len(reads) == 1
        assert str(reads[0].actor_id) == support.user_id
        assert reads[0].target_id == holder_id

    async def test_an_unknown_holder_is_404(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        admin = await make_staff(client, app, "admin")
        response = await client.get(
            f"/v1/admin/account-holders/{uuid.uuid4()}", headers=admin.headers
        )
        assert response.status_code == 404

    async def test_a_member_cannot_read_another_holder(self, client: httpx.AsyncClient) -> None:
        owner = await make_member(client)
        other = await make_member(client)
        holder_id = (await client.get("/v1/account-holders/me", headers=owner.headers)).json()["id"]
        response = await client.get(f"/v1/admin/account-holders/{holder_id}", headers=other.headers)
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "params",
        [{"limit": 0}, {"limit": 101}, {"cursor": "not base64 !"}, {"cursor": "bm9wZQ"}],
    )
    async def test_bad_paging_parameters_are_422(
        self, client: httpx.AsyncClient, app: FastAPI, params: dict[str, object]
    ) -> None:
        admin = await make_staff(client, app, "admin")
        response = await client.get(
            "/v1/admin/account-holders",
            headers=admin.headers,
            params={key: str(value) for key, value in params.items()},
        )
        assert response.status_code == 422
        assert response.json()["code"] in {"validation_error", "invalid_cursor"}


class TestStaffWithoutProfile:
    async def test_a_cli_created_admin_has_no_profile(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        from banking.identity import service as identity
        from banking.identity.models import Role
        from tests.factories import PASSWORD, login

        async with app.state.db.sessionmaker() as session:
            await identity.create_user(
                session, email="root@example.com", password=PASSWORD, role=Role.admin
            )
        token = (await login(client, "root@example.com")).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = await client.get("/v1/auth/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["role"] == "admin"
        assert me.json()["profile"] is None
        assert (await client.get("/v1/account-holders/me", headers=headers)).status_code == 404
        listed = await client.get("/v1/admin/account-holders", headers=headers)
        assert listed.status_code == 200


async def test_the_openapi_schema_describes_the_new_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/auth/me",
        "/v1/account-holders/me",
        "/v1/admin/account-holders",
        "/v1/admin/account-holders/{holder_id}",
        "/v1/admin/audit",
    ):
        assert path in paths
