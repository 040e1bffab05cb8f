"""Events (the outbox) and webhooks, in process, on SQLite and (TEST_DATABASE_URL) PostgreSQL.

Webhooks go to a real HTTP receiver on 127.0.0.1 (tests/support/webhook_receiver.py),
sent by the dispatcher running in the app's lifespan as in production.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from banking.client import WebhookVerificationError, verify_webhook
from banking.core.db import utcnow, write_transaction
from banking.events import dispatcher, outbox, urls
from banking.events.models import Event
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind, EntryStatus, JournalEntry
from banking.ledger.writer import writer_for
from tests.factories import Member, deposit, keyed, make_member, make_staff, open_account
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "webhook_allow_private": True,
        "events_dispatch_interval_s": 0.05,
        "webhook_retry_base_s": 0.05,
    }


async def _events(client: httpx.AsyncClient, member: Member, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await client.get(
            "/v1/events",
            params={"limit": 100, **params, **({"cursor": cursor} if cursor else {})},
            headers=member.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return items


async def _count_events(app: FastAPI, **where: Any) -> int:
    async with app.state.db.sessionmaker() as session:
        statement = select(func.count()).select_from(Event)
        for name, value in where.items():
            statement = statement.where(getattr(Event, name) == value)
        return int(await session.scalar(statement) or 0)


async def _publish(app: FastAPI) -> None:
    await dispatcher.publish(app.state.db)


class TestOutbox:
    async def test_a_transfer_to_another_member_tells_both_owners(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada, bob = await make_member(client), await make_member(client)
        source = await open_account(client, ada, balance_minor=10_000)
        target = await open_account(client, bob)
        response = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": source["id"],
                "target_account_number": target["number"],
                "amount": 2_500,
            },
            headers=keyed(ada.headers),
        )
        assert response.status_code == 201, response.text
        transfer = response.json()
        await _publish(app)

        sent = [event for event in await _events(client, ada) if event["type"] == "transfer.posted"]
        assert len(sent) == 1
        assert sent[0]["subject"] == {"type": "journal_entry", "id": transfer["id"]}
        assert sent[0]["owner_id"] == ada.user_id
        assert sent[0]["data"]["amount"] == 2_500
        assert sent[0]["data"]["balance_after"] == 7_500
        # Someone else's account id is not revealed, as in the API's answer.
        assert sent[0]["data"]["target_account_id"] is None

        received = await _events(client, bob, type="transfer.received")
        assert len(received) == 1
        assert received[0]["data"]["account_id"] == target["id"]
        assert received[0]["data"]["balance_after"] == 2_500
        assert received[0]["data"]["id"] == transfer["id"]
        # Nobody sees another member's events.
        assert all(event["owner_id"] == bob.user_id for event in await _events(client, bob))
        other = await client.get(f"/v1/events/{sent[0]['id']}", headers=bob.headers)
        assert other.status_code == 404

    async def test_a_declined_movement_is_an_event_too(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada, balance_minor=100)
        response = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 500},
            headers=keyed(ada.headers),
        )
        assert response.status_code == 409
        await _publish(app)
        declined = await _events(client, ada, type="withdrawal.declined")
        assert len(declined) == 1
        assert declined[0]["data"]["decline_reason"] == "insufficient_funds"
        assert declined[0]["data"]["balance_after"] is None

    async def test_a_rolled_back_movement_leaves_no_event(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada, balance_minor=1_000)
        db = app.state.db
        before = await _count_events(app)

        class Abort(Exception):
            pass

        def post_then_fail(connection: Any) -> None:
            result = ledger.post_sync(
                connection,
                ledger.Movement(
                    kind=EntryKind.withdrawal,
                    source_account_id=uuid.UUID(account["id"]),
                    target_account_id=ledger.cash_account_id("USD"),
                    origin_account_id=uuid.UUID(account["id"]),
                    amount_minor=300,
                    currency="USD",
                ),
                limits=ledger.Limits.from_settings(db.settings),
            )
            assert result.outcome is not None
            assert result.outcome.posted
            # Written in this transaction: the event is there until the rollback.
            assert connection.scalar(select(func.count()).select_from(Event)) == before + 1
            raise Abort()

        with pytest.raises(Abort):
            await writer_for(db).run(post_then_fail)
        assert await _count_events(app) == before
        async with db.sessionmaker() as session:
            withdrawals = await session.scalar(
                select(func.count())
                .select_from(JournalEntry)
                .where(JournalEntry.kind == EntryKind.withdrawal.value)
            )
        assert withdrawals == 0

        # The same through a service transaction (`write_transaction` + `outbox.emit`).
        async def emit_then_fail() -> None:
            async with db.sessionmaker() as session, write_transaction(session):
                await outbox.emit(
                    session,
                    type="test.emitted",
                    owner_id=uuid.UUID(ada.user_id),
                    subject_type="test",
                    subject_id="1",
                    data={"ok": True},
                )
                raise Abort()

        with pytest.raises(Abort):
            await emit_then_fail()
        assert await _count_events(app) == before

    async def test_event_data_never_carries_a_card_number_cvv_or_secret(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # The ledger writes its rows without the check (hot path): its keys are fixed.
        source, target = uuid.uuid4(), uuid.uuid4()
        locked = {
            account: ledger.LockedAccount(
                account, "active", "USD", 100, 0, None, None, 0, None, owner_id=uuid.uuid4()
            )
            for account in (source, target)
        }
        movement = ledger.Movement(
            kind=EntryKind.transfer,
            source_account_id=source,
            target_account_id=target,
            origin_account_id=source,
            amount_minor=1,
            currency="USD",
        )
        outcome = ledger.Outcome(
            entry_id=uuid.uuid4(),
            movement=movement,
            status=EntryStatus.posted,
            created_at=utcnow(),
            balances_after={source: 99, target: 101},
        )
        rows = ledger.movement_events(outcome, locked)
        assert [row["type"] for row in rows] == ["transfer.posted", "transfer.received"]
        for row in rows:
            assert not set(json.loads(row["data"])) & outbox.FORBIDDEN_KEYS
        with pytest.raises(outbox.ForbiddenEventData):
            outbox.row(
                type="card.issued",
                owner_id=None,
                subject_type="card",
                subject_id="x",
                data={"card": {"pan": "4000000000000002"}},
            )
        ada = await make_member(client)
        account = await open_account(client, ada)
        issued = await client.post(
            f"/v1/accounts/{account['id']}/cards", json={"type": "virtual"}, headers=ada.headers
        )
        assert issued.status_code == 201, issued.text
        card = issued.json()
        await _publish(app)
        events = await _events(client, ada)
        assert [event["type"] for event in events][-1] == "card.issued"
        everything = json.dumps(events)
        assert card["pan"] not in everything
        assert f'"{card["cvv"]}"' not in everything
        assert ada.access_token not in everything
        assert ada.refresh_token not in everything

    async def test_state_changes_are_events(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        ada = await make_member(client)
        admin = await make_staff(client, app)
        account = await open_account(client, ada)
        frozen = await client.post(
            f"/v1/admin/accounts/{account['id']}/freeze", json={}, headers=admin.headers
        )
        assert frozen.status_code == 200, frozen.text
        changed = await client.post(
            "/v1/auth/password",
            json={"current_password": ada.password, "new_password": "Other-Harbour-Lantern-77"},
            headers=ada.headers,
        )
        assert changed.status_code in (200, 204), changed.text
        await _publish(app)
        types = [event["type"] for event in await _events(client, ada)]
        assert types == [
            "session.created",
            "account.opened",
            "account.frozen",
            "user.password_changed",
        ]
        # Staff read everyone's, filtered by owner; a member may not use that filter.
        of_ada = await _events(client, admin, owner_id=ada.user_id)
        assert [event["type"] for event in of_ada] == types
        refused = await client.get(
            "/v1/events", params={"owner_id": admin.user_id}, headers=ada.headers
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "staff_filter_only"

    async def test_a_consumer_catches_up_after_its_last_event_id(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        for amount in (100, 200, 300):
            assert (await deposit(client, ada, account["id"], amount)).status_code == 201
        await _publish(app)
        posted = await _events(client, ada, type="deposit.posted")
        assert [event["data"]["amount"] for event in posted] == [100, 200, 300]
        rest = await _events(client, ada, type="deposit.posted", after=posted[0]["id"])
        assert [event["id"] for event in rest] == [event["id"] for event in posted[1:]]
        # Sortable ids: creation order.
        assert [event["id"] for event in posted] == sorted(event["id"] for event in posted)

    async def test_one_thousand_movements_are_one_thousand_events(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        source = await open_account(client, ada, balance_minor=1_000_000)
        target = await open_account(client, ada)
        gate = asyncio.Semaphore(32)

        async def one(index: int) -> str:
            async with gate:
                response = await client.post(
                    "/v1/transfers",
                    json={
                        "source_account_id": source["id"],
                        "target_account_id": target["id"],
                        "amount": 1 + index % 7,
                    },
                    headers=keyed(ada.headers),
                )
            assert response.status_code == 201, response.text
            entry_id: str = response.json()["id"]
            return entry_id

        entries = await asyncio.gather(*(one(index) for index in range(1_000)))
        await _publish(app)
        posted = await _events(client, ada, type="transfer.posted")
        assert len(posted) == 1_000
        assert sorted(event["subject"]["id"] for event in posted) == sorted(entries)
        assert len({event["id"] for event in posted}) == 1_000


async def _endpoint(
    client: httpx.AsyncClient, member: Member, url: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, **body}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


class TestWebhooks:
    async def test_events_arrive_signed_in_order_and_verify(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        with Receiver() as receiver:
            endpoint = await _endpoint(
                client, ada, receiver.url, event_types=["deposit.*"], description="books"
            )
            assert endpoint["secret"].startswith("whsec_")
            shown = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=ada.headers)
            assert "secret" not in shown.json()
            for amount in (1, 2, 3, 4, 5):
                assert (await deposit(client, ada, account["id"], amount)).status_code == 201
            received = await receiver.wait_async(5)
        amounts = []
        for request in received:
            event = verify_webhook(endpoint["secret"], request.headers, request.body)
            assert request.headers["Banking-Event-Id"] == event["id"]
            assert event["type"] == "deposit.posted"
            amounts.append(event["data"]["amount"])
            with pytest.raises(WebhookVerificationError):
                verify_webhook("whsec_wrong", request.headers, request.body)
            with pytest.raises(WebhookVerificationError):
                verify_webhook(endpoint["secret"], request.headers, request.body + b" ")
            with pytest.raises(WebhookVerificationError):
                verify_webhook(
                    endpoint["secret"], request.headers, request.body, now=time.time() + 301
                )
        assert amounts == [1, 2, 3, 4, 5]
        # Account opening and the session were not subscribed.
        assert {request.event["type"] for request in received} == {"deposit.posted"}

    async def test_a_failing_receiver_gets_retries_then_success(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        with Receiver(fail_first=3) as receiver:
            endpoint = await _endpoint(client, ada, receiver.url)
            assert (await deposit(client, ada, account["id"], 700)).status_code == 201
            assert (await deposit(client, ada, account["id"], 800)).status_code == 201
            received = await receiver.wait_async(2)
        assert receiver.failed == 3
        # In order: the second deposit waited behind the first one's retries.
        assert [request.event["data"]["amount"] for request in received] == [700, 800]
        for _ in range(200):
            # Recorded just after the receiver answered.
            deliveries = await client.get(
                f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=ada.headers
            )
            assert deliveries.status_code == 200
            items = deliveries.json()["items"]
            if all(item["status"] == "succeeded" for item in items):
                break
            await asyncio.sleep(0.05)
        first = next(item for item in items if item["event_id"] == received[0].event["id"])
        assert first["status"] == "succeeded"
        assert first["attempts"] == 4
        log = first["attempt_log"]
        assert [attempt["status_code"] for attempt in log] == [200, 500, 500, 500]
        assert log[1]["response_excerpt"] == '{"error":"try later"}'

        # A retry sends it again (at-least-once: same event id), here to a new URL.
        with Receiver() as again:
            moved = await client.patch(
                f"/v1/webhook-endpoints/{endpoint['id']}",
                json={"url": again.url},
                headers=ada.headers,
            )
            assert moved.status_code == 200, moved.text
            retried = await client.post(
                f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{first['id']}/retry",
                headers=ada.headers,
            )
            assert retried.status_code == 202
            resent = await again.wait_async(1)
        assert resent[0].headers["Banking-Event-Id"] == received[0].event["id"]

    @pytest.mark.parametrize(
        "settings_overrides",
        [
            {
                "webhook_allow_private": True,
                "events_dispatch_interval_s": 0.05,
                "webhook_retry_base_s": 0.05,
                "webhook_give_up_after_s": 1,
            }
        ],
    )
    async def test_an_endpoint_failing_too_long_is_disabled_and_its_owner_told(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        with Receiver(fail_first=1_000_000) as receiver:
            endpoint = await _endpoint(client, ada, receiver.url, event_types=["deposit.posted"])
            assert (await deposit(client, ada, account["id"], 100)).status_code == 201
            for _ in range(300):
                shown = await client.get(
                    f"/v1/webhook-endpoints/{endpoint['id']}", headers=ada.headers
                )
                if shown.json()["status"] == "disabled":
                    break
                await asyncio.sleep(0.05)
        assert shown.json()["status"] == "disabled"
        assert shown.json()["disabled_reason"] == "failing"
        assert receiver.failed >= 2
        await _publish(app)
        told = await _events(client, ada, type="webhook_endpoint.disabled")
        assert [event["subject"]["id"] for event in told] == [endpoint["id"]]
        deliveries = await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=ada.headers
        )
        assert deliveries.json()["items"][0]["status"] == "failed"

    async def test_during_a_rotation_both_secrets_sign(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        with Receiver() as receiver:
            endpoint = await _endpoint(client, ada, receiver.url, event_types=["deposit.posted"])
            rotated = await client.post(
                f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                json={"grace_period_s": 3600},
                headers=ada.headers,
            )
            assert rotated.status_code == 200, rotated.text
            new_secret = rotated.json()["secret"]
            assert new_secret != endpoint["secret"]
            assert rotated.json()["previous_secret_expires_at"] is not None
            assert (await deposit(client, ada, account["id"], 100)).status_code == 201
            (request,) = await receiver.wait_async(1)
        assert request.headers["Banking-Signature"].count("v1=") == 2
        verify_webhook(new_secret, request.headers, request.body)
        verify_webhook(endpoint["secret"], request.headers, request.body)

    async def test_endpoints_are_private_to_their_owner_and_can_be_deleted(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada, bob = await make_member(client), await make_member(client)
        # A null description is no description (found by the fuzzer: it was a 500).
        endpoint = await _endpoint(client, ada, "http://127.0.0.1:9/hooks", description=None)
        assert endpoint["description"] is None
        for method, path in (
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", "/rotate-secret"),
            ("GET", "/deliveries"),
        ):
            response = await client.request(
                method,
                f"/v1/webhook-endpoints/{endpoint['id']}{path}",
                headers=bob.headers,
                **({"json": {}} if method == "PATCH" else {}),
            )
            assert response.status_code == 404, (method, path, response.text)
        listed = await client.get("/v1/webhook-endpoints", headers=bob.headers)
        assert listed.json()["items"] == []
        deleted = await client.delete(
            f"/v1/webhook-endpoints/{endpoint['id']}", headers=ada.headers
        )
        assert deleted.status_code == 204
        listed = await client.get("/v1/webhook-endpoints", headers=ada.headers)
        assert listed.json()["items"] == []


class TestUrlSafety:
    @pytest.mark.parametrize(
        "settings_overrides", [{"webhook_allow_private": False, "events_dispatch_interval_s": 0}]
    )
    @pytest.mark.parametrize(
        "url",
        [
            "http://example.com/hooks",
            "https://127.0.0.1/hooks",
            "https://localhost/hooks",
            "https://10.1.2.3/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hooks",
            "https://user:pw@example.com/hooks",
            "ftp://example.com/hooks",
            # Found by the fuzzer: these were a 500 before.
            "https://example.com:99999/hooks",
            "https://exa\u00a7mple.com/hooks",
            "https://[zz::1/hooks",
        ],
    )
    async def test_unsafe_urls_are_refused_at_registration(
        self, client: httpx.AsyncClient, url: str
    ) -> None:
        ada = await make_member(client)
        response = await client.post(
            "/v1/webhook-endpoints", json={"url": url}, headers=ada.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] in ("webhook_url_not_allowed", "validation_error")

    async def test_a_host_that_resolves_inside_is_refused_at_delivery_too(self) -> None:
        # `localhost` is a name, so only its resolution shows it is loopback.
        urls.check_syntax("https://localhost/hooks", allow_private=False)
        with pytest.raises(urls.UnsafeWebhookUrl):
            await urls.resolve("https://localhost/hooks", allow_private=False)
        target = await urls.resolve("http://localhost:8123/x?y=1", allow_private=True)
        assert target.host == "localhost:8123"
        assert target.url.endswith(":8123/x?y=1")
        assert target.address in ("127.0.0.1", "::1")
