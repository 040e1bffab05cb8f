"""What the staff console relies on: people found by several words of their name or by
their user id, and audit events that say who acted; and the docs pages served offline."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories import make_member, make_staff, open_account


class TestPeopleSearch:
    async def test_every_word_of_the_name_must_match(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        staff = await make_staff(client, app, role="support")
        await make_member(client, first_name="Grace", last_name="Hopper")
        await make_member(client, first_name="Grace", last_name="Kelly")
        found = await client.get(
            "/v1/admin/account-holders", params={"name": "grace hop"}, headers=staff.headers
        )
        assert found.status_code == 200, found.text
        names = {(h["first_name"], h["last_name"]) for h in found.json()["items"]}
        assert ("Grace", "Hopper") in names
        assert ("Grace", "Kelly") not in names

    async def test_an_accounts_owner_is_found_by_user_id(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        staff = await make_staff(client, app, role="support")
        member = await make_member(client, first_name="Alan", last_name="Turing")
        await make_member(client)
        found = await client.get(
            "/v1/admin/account-holders", params={"user_id": member.user_id}, headers=staff.headers
        )
        assert [h["email"] for h in found.json()["items"]] == [member.email]


class TestAuditWho:
    async def test_each_event_names_the_email_of_who_acted_and_the_reason(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        admin = await make_staff(client, app)
        member = await make_member(client)
        account = await open_account(client, member)
        frozen = await client.post(
            f"/v1/admin/accounts/{account['id']}/freeze",
            json={"reason": "Card reported stolen"},
            headers=admin.headers,
        )
        assert frozen.status_code == 200, frozen.text
        events = await client.get(
            "/v1/admin/audit", params={"event_type": "account.frozen"}, headers=admin.headers
        )
        (event,) = events.json()["items"]
        assert event["actor_email"] == admin.email
        assert event["details"]["reason"] == "Card reported stolen"


class TestOfflineDocs:
    async def test_the_docs_pages_load_their_assets_from_this_server(
        self, client: httpx.AsyncClient
    ) -> None:
        swagger = await client.get("/docs")
        assert swagger.status_code == 200
        assert "/static-offline-docs/swagger-ui-bundle.js" in swagger.text
        assert "https://" not in swagger.text
        redoc = await client.get("/redoc")
        assert "/docs-assets/redoc.standalone.js" in redoc.text
        assert "https://" not in redoc.text
        script = await client.get("/docs-assets/redoc.standalone.js")
        assert script.status_code == 200
        assert "cdn.redoc.ly" not in script.text
        assert (await client.get("/static-offline-docs/swagger-ui-bundle.js")).status_code == 200
        assert "cdn.jsdelivr" not in swagger.headers["content-security-policy"]

    async def test_the_description_is_a_primer_and_staff_operations_are_listed_once(
        self, client: httpx.AsyncClient
    ) -> None:
        schema = (await client.get("/openapi.json")).json()
        description = schema["info"]["description"]
        for topic in ("Authentication", "minor units", "Idempotency-Key", "problem+json"):
            assert topic in description
        for path, item in schema["paths"].items():
            for operation in item.values():
                assert len(operation["tags"]) == 1, path
        assert schema["paths"]["/v1/admin/cards/{card_id}/freeze"]["post"]["tags"] == ["admin"]
