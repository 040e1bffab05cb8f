"""Batch transfers: all_or_nothing rolls back with one bad item; independent posts each."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from banking.ledger.models import EntryStatus, JournalEntry
from tests.factories import Member, make_member, open_account
from tests.integration.test_payments import (
    assert_ledger_verifies,
    balance_of,
    declined,
    key_headers,
)


async def send_batch(
    client: httpx.AsyncClient,
    member: Member,
    mode: str,
    items: list[dict[str, Any]],
    key: str | None = None,
) -> httpx.Response:
    return await client.post(
        "/v1/transfer-batches",
        json={"mode": mode, "items": items},
        headers=key_headers(member, key),
    )


def item(source: dict[str, Any], target: dict[str, Any], amount: int) -> dict[str, Any]:
    return {
        "source_account_id": source["id"],
        "target_account_number": target["number"],
        "amount": amount,
    }


async def posted_count(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.status == EntryStatus.posted.value, JournalEntry.kind == "transfer")
        )
    return int(count or 0)


class TestAllOrNothing:
    async def test_one_declined_item_rolls_back_every_item_and_is_named(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        items = [item(source, bobs, 30_00), item(source, bobs, 30_00), item(source, bobs, 50_00)]

        response = await send_batch(client, alice, "all_or_nothing", items)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["code"] == "batch_rejected"
        assert (body["failed_item_index"], body["reason"]) == (2, "insufficient_funds")
        assert [entry["status"] for entry in body["items"]] == [
            "not_posted",
            "not_posted",
            "declined",
        ]
        assert await balance_of(client, alice, source) == 100_00
        assert await balance_of(client, bob, bobs) == 0
        assert await posted_count(app) == 0
        # The refused item is recorded like a declined transfer.
        assert [entry["decline_reason"] for entry in await declined(client, alice, source)] == [
            "insufficient_funds"
        ]
        await assert_ledger_verifies(app)

    async def test_an_unknown_target_rejects_the_batch(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        items = [
            item(source, bobs, 1_00),
            {"source_account_id": source["id"], "payee_id": str(uuid.uuid4()), "amount": 1},
        ]
        response = await send_batch(client, alice, "all_or_nothing", items)
        assert response.status_code == 404
        assert (response.json()["failed_item_index"], response.json()["reason"]) == (
            1,
            "not_found",
        )
        assert await balance_of(client, alice, source) == 100_00

    async def test_all_good_items_post_together(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        savings = await open_account(client, alice, type="savings")
        bobs = await open_account(client, bob)
        items = [
            item(source, bobs, 10_00),
            {"source_account_id": source["id"], "target_account_id": savings["id"], "amount": 5},
        ]
        response = await send_batch(client, alice, "all_or_nothing", items)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["posted"], body["declined"]) == ("completed", 2, 0)
        assert body["items"][1]["transfer"]["target_account_id"] == savings["id"]
        assert await balance_of(client, alice, source) == 100_00 - 10_00 - 5
        await assert_ledger_verifies(app)


class TestIndependent:
    async def test_each_item_posts_or_is_declined_on_its_own(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        frozen_currency = await open_account(client, bob, currency="EUR")
        bobs = await open_account(client, bob)
        items = [
            item(source, bobs, 60_00),
            item(source, bobs, 60_00),
            item(source, frozen_currency, 1_00),
            {"source_account_id": str(uuid.uuid4()), "target_account_id": bobs["id"], "amount": 1},
            item(source, bobs, 40_00),
        ]
        response = await send_batch(client, alice, "independent", items)
        assert response.status_code == 201, response.text
        body = response.json()
        assert [(entry["status"], entry["code"]) for entry in body["items"]] == [
            ("posted", None),
            ("declined", "insufficient_funds"),
            ("declined", "currency_mismatch"),
            ("not_posted", "not_found"),
            ("posted", None),
        ]
        assert (body["posted"], body["declined"]) == (2, 3)
        assert body["items"][4]["transfer"]["balance_after"] == 0
        assert await balance_of(client, bob, bobs) == 100_00
        await assert_ledger_verifies(app)


class TestIdempotency:
    async def test_one_key_covers_the_batch_and_a_retry_replays_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        items = [item(source, bobs, 1_00) for _ in range(20)]
        first = await send_batch(client, alice, "independent", items, key="batch-1")
        again = await send_batch(client, alice, "independent", items, key="batch-1")
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert await posted_count(app) == 20
        other = await send_batch(client, alice, "all_or_nothing", items, key="batch-1")
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        missing = await client.post(
            "/v1/transfer-batches",
            json={"mode": "independent", "items": items},
            headers=alice.headers,
        )
        assert missing.status_code == 400

    async def test_size_limits(self, client: httpx.AsyncClient) -> None:
        alice = await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        empty = await send_batch(client, alice, "independent", [])
        assert empty.status_code == 422
        too_many = await send_batch(client, alice, "independent", [item(source, source, 1)] * 1001)
        assert too_many.status_code == 422
