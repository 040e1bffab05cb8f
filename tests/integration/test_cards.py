"""Debit cards: issuance, masking, data at rest, freeze/cancel, limits, authorizations,
captures, voids, expiry, concurrency, ledger verify with holds, key rotation, secrecy."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from banking.accounts.models import Account
from banking.app import create_app
from banking.audit.models import AuditEvent
from banking.cards import service as cards
from banking.cards.models import Card, CardAuthorization
from banking.cards.vault import Vault, VaultKey, luhn_valid
from banking.core.db import Database, utcnow
from banking.ledger.verify import verify_ledger
from tests.cards_support import (
    NETWORK,
    approved,
    authorize,
    balance,
    funded_card,
    issue_card,
    payment,
)
from tests.conftest import TEST_SECRETS, make_settings
from tests.factories import keyed, make_member, make_staff, open_account

MASKED_FIELDS = {"last4", "brand", "exp_month", "exp_year", "status"}


def _set_clock(app: FastAPI, moment: dt.datetime) -> None:
    app.state.clock = lambda: moment


async def _history(
    client: httpx.AsyncClient, member: Any, card_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/cards/{card_id}/authorizations", headers=member.headers, params=params
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _audit_events(app: FastAPI) -> list[AuditEvent]:
    async with app.state.db.sessionmaker() as session:
        return list((await session.execute(select(AuditEvent))).scalars())


class TestIssuance:
    async def test_issuance_shows_the_pan_and_cvv_once_and_reads_are_masked(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        pan, cvv = card["pan"], card["cvv"]
        assert len(pan) == 16
        assert pan.startswith("400000")
        assert luhn_valid(pan)
        assert len(cvv) == 3
        assert cvv.isdigit()
        assert card["last4"] == pan[-4:]
        assert card["cardholder_name"] == "ADA LOVELACE"
        assert card["status"] == "active"
        assert card["brand"] == "visa"
        assert card["exp_year"] == utcnow().year + 4
        assert card["currency"] == "USD"
        assert card["account_id"] == account["id"]

        one = await client.get(f"/v1/cards/{card['id']}", headers=member.headers)
        listed = await client.get("/v1/cards", headers=member.headers)
        assert one.status_code == listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [card["id"]]
        for shown in (one.json(), listed.json()["items"][0]):
            assert set(shown) >= MASKED_FIELDS
            assert "pan" not in shown
            assert "cvv" not in shown
        for response in (one, listed):
            assert pan not in response.text
            assert pan[:12] not in response.text
            assert f'"{cvv}"' not in response.text

    async def test_a_chosen_cardholder_name_is_embossed_in_capitals(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member, type="physical", cardholder_name="Ada King")
        assert card["cardholder_name"] == "ADA KING"
        assert card["type"] == "physical"

    async def test_cards_on_another_members_account_or_card_are_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        owner = await make_member(client)
        other = await make_member(client)
        account, card = await funded_card(client, owner)
        issue = await client.post(
            f"/v1/accounts/{account['id']}/cards", json={"type": "virtual"}, headers=other.headers
        )
        assert issue.status_code == 404
        for method, path, body in (
            ("GET", f"/v1/cards/{card['id']}", None),
            ("POST", f"/v1/cards/{card['id']}/freeze", None),
            ("POST", f"/v1/cards/{card['id']}/unfreeze", None),
            ("POST", f"/v1/cards/{card['id']}/cancel", None),
            ("PATCH", f"/v1/cards/{card['id']}/limits", {"daily_limit": 5}),
            ("GET", f"/v1/cards/{card['id']}/authorizations", None),
        ):
            response = await client.request(method, path, json=body, headers=other.headers)
            assert response.status_code == 404, (method, path, response.text)
        assert (await client.get("/v1/cards", headers=other.headers)).json()["items"] == []

    async def test_no_card_is_issued_on_a_frozen_account(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        account = await open_account(client, member)
        frozen = await client.post(
            f"/v1/admin/accounts/{account['id']}/freeze", headers=admin.headers
        )
        assert frozen.status_code == 200
        response = await client.post(
            f"/v1/accounts/{account['id']}/cards", json={"type": "virtual"}, headers=member.headers
        )
        assert response.status_code == 409
        assert response.json()["code"] == "account_not_active"


class TestEncryptionAtRest:
    async def test_the_raw_card_row_holds_no_pan_digits_beyond_last4_and_no_cvv(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        pan, cvv = card["pan"], card["cvv"]
        async with app.state.db.engine.connect() as connection:
            row = (await connection.execute(text("SELECT * FROM card"))).mappings().one()
        for column, value in row.items():
            raw = value if isinstance(value, bytes) else str(value).encode()
            for leak in (pan, pan[:-4], pan[4:12], pan[6:-4]):
                assert leak.encode() not in raw, f"PAN digits in column {column}"
                assert leak.encode().hex().encode() not in raw
            assert str(value) != cvv, f"the CVV is column {column}"
        assert row["last4"] == pan[-4:]
        # The CVV digest is keyed: not a plain hash anyone could brute-force offline.
        assert row["cvv_digest"] != hashlib.sha256(cvv.encode()).hexdigest()
        assert row["pan_digest"] != hashlib.sha256(pan.encode()).hexdigest()
        vault = Vault(TEST_SECRETS["card_encryption_key"])
        ciphertext = bytes(row["pan_ciphertext"])
        assert vault.decrypt_pan(row["pan_key_id"], ciphertext, card_id=card["id"]) == pan


class TestFreezeUnfreezeCancel:
    async def test_a_frozen_card_is_declined_until_unfrozen(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        frozen = await client.post(f"/v1/cards/{card['id']}/freeze", headers=member.headers)
        assert frozen.status_code == 200
        assert frozen.json()["status"] == "frozen"
        again = await client.post(f"/v1/cards/{card['id']}/freeze", headers=member.headers)
        assert again.status_code == 409
        assert again.json()["code"] == "card_status_conflict"
        declined = (await authorize(client, card)).json()
        assert (declined["status"], declined["decline_reason"]) == ("declined", "card_frozen")
        thawed = await client.post(f"/v1/cards/{card['id']}/unfreeze", headers=member.headers)
        assert thawed.status_code == 200
        assert thawed.json()["status"] == "active"
        assert (await authorize(client, card)).json()["status"] == "approved"

    async def test_only_an_admin_lifts_an_admins_freeze(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        _, card = await funded_card(client, member)
        frozen = await client.post(f"/v1/admin/cards/{card['id']}/freeze", headers=admin.headers)
        assert frozen.status_code == 200
        assert frozen.json()["status"] == "frozen"
        assert frozen.json()["frozen_by_admin"]
        refused = await client.post(f"/v1/cards/{card['id']}/unfreeze", headers=member.headers)
        assert refused.status_code == 409
        assert refused.json()["code"] == "card_frozen_by_admin"
        lifted = await client.post(f"/v1/admin/cards/{card['id']}/unfreeze", headers=admin.headers)
        assert lifted.status_code == 200
        assert lifted.json()["status"] == "active"

    async def test_cancellation_is_final(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        cancelled = await client.post(f"/v1/cards/{card['id']}/cancel", headers=member.headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["cancelled_at"]
        for path, body in (
            ("/unfreeze", None),
            ("/freeze", None),
            ("/cancel", None),
        ):
            response = await client.post(
                f"/v1/cards/{card['id']}{path}", json=body, headers=member.headers
            )
            assert response.status_code == 409
            assert response.json()["code"] == "card_cancelled"
        limits = await client.patch(
            f"/v1/cards/{card['id']}/limits", json={"daily_limit": 5}, headers=member.headers
        )
        assert limits.status_code == 409
        declined = (await authorize(client, card)).json()
        assert declined["decline_reason"] == "card_cancelled"


class TestLimits:
    async def test_limits_are_set_kept_and_removed(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        path = f"/v1/cards/{card['id']}/limits"
        both = await client.patch(
            path,
            json={"per_transaction_limit": 20_00, "daily_limit": 50_00},
            headers=member.headers,
        )
        assert both.status_code == 200
        assert (both.json()["per_transaction_limit"], both.json()["daily_limit"]) == (20_00, 50_00)
        kept = await client.patch(path, json={"daily_limit": 30_00}, headers=member.headers)
        assert (kept.json()["per_transaction_limit"], kept.json()["daily_limit"]) == (20_00, 30_00)
        removed = await client.patch(
            path, json={"per_transaction_limit": None}, headers=member.headers
        )
        assert removed.json()["per_transaction_limit"] is None
        assert removed.json()["daily_limit"] == 30_00
        shown = (await client.get(f"/v1/cards/{card['id']}", headers=member.headers)).json()
        assert shown["daily_limit"] == 30_00
        for bad in ({"daily_limit": 0}, {"daily_limit": "5"}, {"weekly_limit": 5}):
            assert (await client.patch(path, json=bad, headers=member.headers)).status_code == 422

    async def test_per_transaction_and_daily_limits_decline(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        await client.patch(
            f"/v1/cards/{card['id']}/limits",
            json={"per_transaction_limit": 40_00, "daily_limit": 100_00},
            headers=member.headers,
        )
        over = (await authorize(client, card, 40_01)).json()
        assert over["decline_reason"] == "card_transaction_limit_exceeded"
        first = await approved(client, card, 40_00)
        await approved(client, card, 40_00)
        captured = await client.post(
            f"/v1/card-authorizations/{first}/capture",
            json={"amount": 30_00},
            headers=keyed(NETWORK),
        )
        assert captured.status_code == 200
        # Today: 30.00 captured + 40.00 held = 70.00; 30.01 more would pass 100.00.
        daily = (await authorize(client, card, 30_01)).json()
        assert daily["decline_reason"] == "card_daily_limit_exceeded"
        await approved(client, card, 30_00)
        assert (await balance(client, member, account["id"]))["held"] == 70_00


class TestDeclines:
    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"card_number": "4000009999999999"}, "card_unknown"),
            ({"exp_month": 13 - 1}, "expiry_mismatch"),
            ({"cvv": "wrong"}, "cvv_mismatch"),
            ({"currency": "EUR"}, "currency_mismatch"),
            ({"amount": 100_01}, "insufficient_funds"),
        ],
    )
    async def test_each_decline_is_answered_recorded_and_holds_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, changes: dict[str, Any], reason: str
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        if "cvv" in changes:
            changes = {"cvv": "000" if card["cvv"] != "000" else "111"}
        if "exp_month" in changes:
            changes = {"exp_month": card["exp_month"] % 12 + 1}
        amount = changes.pop("amount", 10_00)
        response = await authorize(client, card, amount, **changes)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "declined"
        assert body["decline_reason"] == reason
        assert body["expires_at"] is None
        money = await balance(client, member, account["id"])
        assert money["available_balance"] == money["balance"] == 100_00
        history = await _history(client, member, card["id"], status="declined")
        if reason == "card_unknown":
            assert history == []
            assert body["card_id"] is None
        else:
            assert [item["decline_reason"] for item in history] == [reason]
        declines = [
            event
            for event in await _audit_events(app)
            if event.event_type == "card.authorization" and event.outcome == "declined"
        ]
        assert [json.loads(event.details)["reason"] for event in declines] == [reason]

    async def test_an_expired_card_is_declined(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        end = cards.expiry_end(card["exp_month"], card["exp_year"])
        _set_clock(app, end - dt.timedelta(seconds=1))
        assert (await authorize(client, card, 1_00)).json()["status"] == "approved"
        _set_clock(app, end)
        declined = (await authorize(client, card, 1_00)).json()
        assert declined["decline_reason"] == "card_expired"

    async def test_a_frozen_or_closed_account_declines_its_cards(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        account, card = await funded_card(client, member)
        await client.post(f"/v1/admin/accounts/{account['id']}/freeze", headers=admin.headers)
        assert (await authorize(client, card)).json()["decline_reason"] == "account_frozen"

        empty = await open_account(client, member)
        other_card = await issue_card(client, member, empty["id"])
        closed = await client.post(f"/v1/accounts/{empty['id']}/close", headers=member.headers)
        assert closed.status_code == 200, closed.text
        assert (await authorize(client, other_card)).json()["decline_reason"] == "account_closed"

    async def test_amounts_above_the_movement_maximum_are_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        body = (await authorize(client, card, 10**12)).json()
        assert body["decline_reason"] == "amount_too_large"


class TestHoldsAndCaptures:
    async def test_an_approval_holds_and_a_partial_capture_debits_and_releases_the_rest(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        response = await authorize(client, card, 42_50)
        held = response.json()
        assert response.status_code == 201
        assert held["status"] == "approved"
        assert held["card_last4"] == card["last4"]
        assert held["amount"] == 42_50
        assert held["expires_at"] is not None
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["available_balance"], money["held"]) == (
            100_00,
            57_50,
            42_50,
        )
        captured = await client.post(
            f"/v1/card-authorizations/{held['id']}/capture",
            json={"amount": 40_00},
            headers=keyed(NETWORK),
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["status"] == "captured"
        assert captured.json()["captured_amount"] == 40_00
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["available_balance"], money["held"]) == (
            60_00,
            60_00,
            0,
        )
        transactions = await client.get(
            f"/v1/accounts/{account['id']}/transactions", headers=member.headers
        )
        latest = transactions.json()["items"][0]
        assert (latest["kind"], latest["amount"], latest["balance_after"]) == (
            "card_capture",
            -40_00,
            60_00,
        )
        assert latest["id"] == captured.json()["capture_entry_id"]
        again = await client.post(
            f"/v1/card-authorizations/{held['id']}/capture",
            json={"amount": 1},
            headers=keyed(NETWORK),
        )
        assert again.status_code == 409
        assert again.json()["code"] == "authorization_not_open"
        assert [item["status"] for item in await _history(client, member, card["id"])] == [
            "captured"
        ]
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    async def test_a_capture_above_the_hold_is_refused(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        held = await approved(client, card, 10_00)
        response = await client.post(
            f"/v1/card-authorizations/{held}/capture",
            json={"amount": 10_01},
            headers=keyed(NETWORK),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "capture_exceeds_authorization"

    async def test_a_void_releases_the_hold_once(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        held = await approved(client, card, 25_00)
        voided = await client.post(f"/v1/card-authorizations/{held}/void", headers=NETWORK)
        assert voided.status_code == 200
        assert voided.json()["status"] == "voided"
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["available_balance"]) == (100_00, 100_00)
        again = await client.post(f"/v1/card-authorizations/{held}/void", headers=NETWORK)
        assert again.status_code == 409
        capture = await client.post(
            f"/v1/card-authorizations/{held}/capture", json={"amount": 1}, headers=keyed(NETWORK)
        )
        assert capture.status_code == 409
        unknown = await client.post(
            "/v1/card-authorizations/00000000-0000-4000-8000-000000000000/void", headers=NETWORK
        )
        assert unknown.status_code == 404

    async def test_a_retried_authorization_replays_and_holds_once(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        first = await authorize(client, card, 30_00, key="auth-retry-1")
        second = await authorize(client, card, 30_00, key="auth-retry-1")
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert second.headers.get("Idempotent-Replayed") == "true"
        reused = await authorize(client, card, 31_00, key="auth-retry-1")
        assert reused.status_code == 422
        assert reused.json()["code"] == "idempotency_key_reused"
        assert (await balance(client, member, account["id"]))["held"] == 30_00

    async def test_a_capture_on_a_since_frozen_account_is_declined_and_keeps_the_hold(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        account, card = await funded_card(client, member)
        held = await approved(client, card, 10_00)
        await client.post(f"/v1/admin/accounts/{account['id']}/freeze", headers=admin.headers)
        response = await client.post(
            f"/v1/card-authorizations/{held}/capture",
            json={"amount": 10_00},
            headers=keyed(NETWORK),
        )
        assert response.status_code == 409
        assert response.json()["code"] == "account_frozen"
        assert response.json()["authorization_id"] == held
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["held"]) == (100_00, 10_00)


class TestExpiry:
    async def test_holds_lapse_after_the_hold_days_and_reads_show_them_released(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        held = await approved(client, card, 30_00)
        _set_clock(app, start + dt.timedelta(days=7) - dt.timedelta(seconds=1))
        assert (await balance(client, member, account["id"]))["held"] == 30_00
        _set_clock(app, start + dt.timedelta(days=7))
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["available_balance"], money["held"]) == (
            100_00,
            100_00,
            0,
        )
        history = await _history(client, member, card["id"])
        assert [(item["id"], item["status"]) for item in history] == [(held, "expired")]
        capture = await client.post(
            f"/v1/card-authorizations/{held}/capture", json={"amount": 1}, headers=keyed(NETWORK)
        )
        assert capture.status_code == 409
        assert capture.json()["code"] == "authorization_expired"
        events = [event.event_type for event in await _audit_events(app)]
        assert events.count("card.hold_expired") == 1

    async def test_a_stranger_reading_the_account_changes_nothing_before_the_404(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        stranger = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        await approved(client, card, 30_00)
        _set_clock(app, start + dt.timedelta(days=8))
        probe = await client.get(f"/v1/accounts/{account['id']}", headers=stranger.headers)
        assert probe.status_code == 404
        events = [event.event_type for event in await _audit_events(app)]
        assert "card.hold_expired" not in events
        # The owner's read shows the hold released, and writes nothing either.
        own = await client.get(f"/v1/accounts/{account['id']}", headers=member.headers)
        assert own.status_code == 200
        assert (own.json()["available_balance"], own.json()["held"]) == (100_00, 0)
        events = [event.event_type for event in await _audit_events(app)]
        assert "card.hold_expired" not in events
        # The write path releases it (here the command the sweeper also runs).
        assert await cards.expire_all_due(app.state.db, now=start + dt.timedelta(days=8)) == 1
        events = [event.event_type for event in await _audit_events(app)]
        assert events.count("card.hold_expired") == 1
        again = await client.get(f"/v1/accounts/{account['id']}", headers=member.headers)
        assert again.json() == own.json()

    async def test_a_capture_after_the_hold_lapsed_releases_it_and_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        held = await approved(client, card, 30_00)
        _set_clock(app, start + dt.timedelta(days=8))
        capture = await client.post(
            f"/v1/card-authorizations/{held}/capture",
            json={"amount": 30_00},
            headers=keyed(NETWORK),
        )
        assert capture.status_code == 409
        assert capture.json()["code"] == "authorization_expired"
        shown = await client.get(f"/v1/card-authorizations/{held}", headers=NETWORK)
        assert shown.json()["status"] == "expired"
        assert (await balance(client, member, account["id"]))["held"] == 0

    async def test_the_expiry_command_releases_every_lapsed_hold(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        await approved(client, card, 10_00)
        await approved(client, card, 20_00)
        db: Database = app.state.db
        assert await cards.expire_all_due(db, now=start + dt.timedelta(days=1)) == 0
        assert await cards.expire_all_due(db, now=start + dt.timedelta(days=7)) == 2
        async with db.sessionmaker() as session:
            held = await session.scalar(
                select(Account.held_minor).where(Account.id == uuid.UUID(account["id"]))
            )
            assert held == 0
        async with db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    @pytest.mark.parametrize("settings_overrides", [{"card_hold_days": 2}], indirect=True)
    async def test_the_hold_days_are_a_setting(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        body = (await authorize(client, card, 1_00)).json()
        assert dt.datetime.fromisoformat(body["expires_at"]) == start + dt.timedelta(days=2)


class TestConcurrency:
    async def test_concurrent_authorizations_never_hold_more_than_the_available_balance(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=100_00)
        responses = await asyncio.gather(*(authorize(client, card, 10_00) for _ in range(20)))
        assert all(response.status_code == 201 for response in responses)
        statuses = [response.json()["status"] for response in responses]
        assert statuses.count("approved") == 10
        reasons = {response.json()["decline_reason"] for response in responses}
        assert reasons == {None, "insufficient_funds"}
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["available_balance"], money["held"]) == (100_00, 0, 100_00)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok


class TestLedgerVerifyWithHolds:
    async def test_verify_checks_held_amounts_against_open_holds(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        await approved(client, card, 10_00)
        voided = await approved(client, card, 5_00)
        await client.post(f"/v1/card-authorizations/{voided}/void", headers=NETWORK)
        captured = await approved(client, card, 20_00)
        await client.post(
            f"/v1/card-authorizations/{captured}/capture",
            json={"amount": 15_00},
            headers=keyed(NETWORK),
        )
        db: Database = app.state.db
        async with db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok
        async with db.engine.begin() as connection:
            await connection.execute(
                update(Account)
                .where(Account.id == uuid.UUID(account["id"]))
                .values(held_minor=11_00)
            )
        async with db.sessionmaker() as session:
            report = await verify_ledger(session)
        assert [(problem.check, problem.subject) for problem in report.problems] == [
            ("held_matches_holds", account["id"])
        ]
        assert "held 1100 != open holds 1000" in report.problems[0].detail


class TestNetworkKey:
    async def test_network_endpoints_refuse_a_missing_or_wrong_key_and_member_tokens(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        for headers in ({}, {"X-Network-Key": "wrong"}, member.headers):
            response = await client.post(
                "/v1/card-authorizations", json=payment(card), headers=headers
            )
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == "invalid_network_key"

    async def test_the_openapi_document_declares_the_network_key_scheme(
        self, client: httpx.AsyncClient
    ) -> None:
        spec = (await client.get("/openapi.json")).json()
        scheme = spec["components"]["securitySchemes"]["NetworkKey"]
        assert (scheme["type"], scheme["in"], scheme["name"]) == (
            "apiKey",
            "header",
            "X-Network-Key",
        )
        operation = spec["paths"]["/v1/card-authorizations"]["post"]
        assert operation["security"] == [{"NetworkKey": []}]
        assert "declined" in operation["responses"]["201"]["description"]


class TestIdempotencyKeyRequired:
    async def test_an_authorization_or_capture_without_a_key_is_refused_and_holds_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=100_00)
        unkeyed = await client.post("/v1/card-authorizations", json=payment(card), headers=NETWORK)
        assert unkeyed.status_code == 400, unkeyed.text
        assert unkeyed.headers["content-type"] == "application/problem+json"
        assert unkeyed.json()["code"] == "idempotency_key_required"
        assert (await balance(client, member, account["id"]))["available_balance"] == 100_00
        held = await approved(client, card, 10_00)
        capture = await client.post(
            f"/v1/card-authorizations/{held}/capture", json={"amount": 10_00}, headers=NETWORK
        )
        assert capture.status_code == 400, capture.text
        assert capture.json()["code"] == "idempotency_key_required"
        after = await balance(client, member, account["id"])
        assert (after["balance"], after["available_balance"]) == (100_00, 90_00)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok


class TestAudit:
    async def test_every_card_event_is_audited_without_card_data(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        _, card = await funded_card(client, member)
        base = f"/v1/cards/{card['id']}"
        await client.patch(f"{base}/limits", json={"daily_limit": 90_00}, headers=member.headers)
        await client.post(f"{base}/freeze", headers=member.headers)
        await client.post(f"{base}/unfreeze", headers=member.headers)
        await client.post(f"/v1/admin/cards/{card['id']}/freeze", headers=admin.headers)
        await client.post(f"/v1/admin/cards/{card['id']}/unfreeze", headers=admin.headers)
        captured = await approved(client, card, 5_00)
        await client.post(
            f"/v1/card-authorizations/{captured}/capture",
            json={"amount": 5_00},
            headers=keyed(NETWORK),
        )
        voided = await approved(client, card, 5_00)
        await client.post(f"/v1/card-authorizations/{voided}/void", headers=NETWORK)
        await authorize(client, card, 5_00, cvv="0000")
        await client.post(f"{base}/cancel", headers=member.headers)
        events = await _audit_events(app)
        kinds = [(event.event_type, event.outcome) for event in events]
        for expected in (
            ("card.issued", "success"),
            ("card.limits_changed", "success"),
            ("card.frozen", "success"),
            ("card.unfrozen", "success"),
            ("card.authorization", "success"),
            ("card.authorization", "declined"),
            ("card.capture", "success"),
            ("card.void", "success"),
            ("card.cancelled", "success"),
        ):
            assert expected in kinds, expected
        everything = " ".join(f"{event.details} {event.target_id}" for event in events)
        assert card["pan"] not in everything
        assert card["pan"][:12] not in everything
        assert f'"{card["cvv"]}"' not in everything


class TestSecrecy:
    @pytest.mark.parametrize("settings_overrides", [{"log_level": "DEBUG"}], indirect=True)
    async def test_pan_and_cvv_appear_in_no_log_line_and_no_response_but_issuance(
        self, client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
    ) -> None:
        responses: list[httpx.Response] = []
        original = client.request

        async def recording(method: str, url: Any, **kwargs: Any) -> httpx.Response:
            response = await original(method, url, **kwargs)
            responses.append(response)
            return response

        client.request = recording  # type: ignore[method-assign]
        member = await make_member(client)
        account, card = await funded_card(client, member)
        base = f"/v1/cards/{card['id']}"
        held = await approved(client, card, 10_00)
        await client.post(
            f"/v1/card-authorizations/{held}/capture", json={"amount": 5_00}, headers=keyed(NETWORK)
        )
        voided = await approved(client, card, 1_00)
        await client.post(f"/v1/card-authorizations/{voided}/void", headers=NETWORK)
        await client.get(f"/v1/card-authorizations/{voided}", headers=NETWORK)
        await authorize(client, card, 1_00, cvv="0000")
        await authorize(client, card, 1_00, exp_year=card["exp_year"] + 1)
        await client.post(
            "/v1/card-authorizations",
            json={**payment(card), "cvv": 123},
            headers=NETWORK,
        )
        await client.post("/v1/card-authorizations", json=payment(card))
        await client.get(base, headers=member.headers)
        await client.get("/v1/cards", headers=member.headers)
        await client.get(f"{base}/authorizations", headers=member.headers)
        await client.post(f"{base}/freeze", headers=member.headers)
        await client.get(f"/v1/accounts/{account['id']}/transactions", headers=member.headers)
        client.request = original  # type: ignore[method-assign]

        logs = capsys.readouterr().err
        assert logging.getLogger().level == logging.DEBUG
        assert '"logger": "banking.http"' in logs
        pan, cvv = card["pan"], card["cvv"]
        issuance = [r for r in responses if r.request.url.path.endswith("/cards")]
        assert len([r for r in issuance if r.request.method == "POST"]) == 1
        for leak in (pan, pan[:-4], pan[6:]):
            assert leak not in logs
        assert f'"{cvv}"' not in logs
        assert f"cvv={cvv}" not in logs
        for response in responses:
            if response.request.method == "POST" and response.request.url.path.endswith("/cards"):
                continue
            assert pan not in response.text, response.request.url
            assert pan[:-4] not in response.text, response.request.url
            assert f'"{cvv}"' not in response.text, response.request.url
            assert '"cvv":' not in response.text
            assert '"pan":' not in response.text


OLD_KEY = TEST_SECRETS["card_encryption_key"]
NEW_KEY = "rotated-card-key-0123456789abcdef0123456789abcdef"


@pytest.fixture
async def rotated_apps(database_url: str) -> AsyncIterator[dict[str, FastAPI]]:
    apps = {
        "new_and_old": create_app(
            make_settings(
                database_url,
                card_encryption_key=NEW_KEY,
                card_encryption_previous_keys=[OLD_KEY],
            )
        ),
        "new_only": create_app(make_settings(database_url, card_encryption_key=NEW_KEY)),
    }
    for application in apps.values():
        await application.router.lifespan_context(application).__aenter__()
    yield apps
    for application in apps.values():
        await application.state.db.dispose()


class TestKeyRotation:
    async def test_rotation_reencrypts_pans_and_keeps_cvvs_verifiable_with_the_old_key(
        self, client: httpx.AsyncClient, app: FastAPI, rotated_apps: dict[str, FastAPI]
    ) -> None:
        member = await make_member(client)
        _, first = await funded_card(client, member)
        second = await issue_card(client, member, (await open_account(client, member))["id"])
        rotating = rotated_apps["new_and_old"]
        report = await cards.rotate_key(rotating.state.db)
        assert (report.reencrypted, report.cards, report.cvv_on_retired_keys) == (2, 2, 2)
        assert (await cards.rotate_key(rotating.state.db)).reencrypted == 0

        new_only = Vault(NEW_KEY)
        old_id = VaultKey.from_secret(OLD_KEY).key_id
        async with app.state.db.engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM card"))).mappings().all()
        by_id = {str(row["id"]).replace("-", ""): row for row in rows}
        for card in (first, second):
            row = by_id[card["id"].replace("-", "")]
            assert row["pan_key_id"] == new_only.current.key_id
            assert row["cvv_key_id"] == old_id
            assert row["pan_digest"] == new_only.pan_digest(card["pan"])
            blob = bytes(row["pan_ciphertext"])
            assert new_only.decrypt_pan(row["pan_key_id"], blob, card_id=card["id"]) == card["pan"]

        transport = httpx.ASGITransport(app=rotating)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await authorize(http, first, 1_00)).json()["status"] == "approved"
        transport = httpx.ASGITransport(app=rotated_apps["new_only"])
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            # The card is found by its new digest, but its CVV digest needs the old key.
            body = (await authorize(http, second, 1_00)).json()
            assert body["card_id"] == second["id"]
            assert body["decline_reason"] == "cvv_mismatch"


def _wrong_cvv(card: dict[str, Any]) -> str:
    return "000" if card["cvv"] != "000" else "111"


async def _card_row(app: FastAPI, card_id: str) -> dict[str, Any]:
    async with app.state.db.sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    Card.status, Card.frozen_by_admin, Card.frozen_reason, Card.cvv_failures
                ).where(Card.id == uuid.UUID(card_id))
            )
        ).one()
    return dict(row._mapping)


class TestWrongCvvCounter:
    async def test_consecutive_wrong_cvvs_freeze_the_card_until_an_admin_unfreezes_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        _, card = await funded_card(client, member)
        wrong = _wrong_cvv(card)
        for attempt in range(3):
            body = (await authorize(client, card, 1_00, cvv=wrong)).json()
            # Each wrong CVV, the last one included, is declined and recorded as such.
            assert (body["status"], body["decline_reason"]) == ("declined", "cvv_mismatch")
            shown = (await client.get(f"/v1/cards/{card['id']}", headers=member.headers)).json()
            assert shown["status"] == ("frozen" if attempt == 2 else "active")
        assert shown["frozen_by_admin"] is True
        assert shown["frozen_reason"] == "cvv_attempts_exceeded"
        # The right CVV no longer helps, and is not even checked.
        blocked = (await authorize(client, card, 1_00)).json()
        assert (blocked["status"], blocked["decline_reason"]) == (
            "declined",
            "cvv_attempts_exceeded",
        )
        assert (await _card_row(app, card["id"]))["cvv_failures"] == 3
        refused = await client.post(f"/v1/cards/{card['id']}/unfreeze", headers=member.headers)
        assert refused.status_code == 409
        assert refused.json()["code"] == "card_frozen_by_admin"
        history = await _history(client, member, card["id"], status="declined")
        assert [item["decline_reason"] for item in history] == [
            "cvv_attempts_exceeded",
            "cvv_mismatch",
            "cvv_mismatch",
            "cvv_mismatch",
        ]
        frozen = [
            json.loads(event.details)
            for event in await _audit_events(app)
            if event.event_type == "card.frozen"
        ]
        assert frozen == [{"by_admin": False, "reason": "cvv_attempts_exceeded", "cvv_failures": 3}]

        lifted = await client.post(f"/v1/admin/cards/{card['id']}/unfreeze", headers=admin.headers)
        assert lifted.status_code == 200
        assert (lifted.json()["status"], lifted.json()["frozen_reason"]) == ("active", None)
        assert (await _card_row(app, card["id"]))["cvv_failures"] == 0
        # The count starts again from zero.
        for _ in range(2):
            await authorize(client, card, 1_00, cvv=wrong)
        assert (await authorize(client, card, 1_00)).json()["status"] == "approved"

    async def test_a_correct_cvv_resets_the_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        wrong = _wrong_cvv(card)
        for _ in range(2):
            await authorize(client, card, 1_00, cvv=wrong)
        # Right CVV, declined for another reason: the CVV still counts as verified.
        assert (await authorize(client, card, 1_000_00)).json()["decline_reason"] == (
            "insufficient_funds"
        )
        assert (await _card_row(app, card["id"]))["cvv_failures"] == 0
        for _ in range(2):
            await authorize(client, card, 1_00, cvv=wrong)
        assert (await _card_row(app, card["id"]))["status"] == "active"
        await authorize(client, card, 1_00, cvv=wrong)
        assert (await _card_row(app, card["id"]))["frozen_reason"] == "cvv_attempts_exceeded"

    async def test_a_replayed_wrong_cvv_counts_once_and_other_declines_do_not_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        wrong = _wrong_cvv(card)
        for _ in range(3):
            response = await authorize(client, card, 1_00, cvv=wrong, key="same-attempt")
            assert response.json()["decline_reason"] == "cvv_mismatch"
        # Over the per-transaction limit with the right data: declined, not a failed check.
        await client.patch(
            f"/v1/cards/{card['id']}/limits",
            json={"per_transaction_limit": 50},
            headers=member.headers,
        )
        limited = (await authorize(client, card, 1_00)).json()
        assert limited["decline_reason"] == "card_transaction_limit_exceeded"
        assert (await _card_row(app, card["id"]))["cvv_failures"] == 0

    async def test_wrong_expiry_dates_count_like_wrong_cvvs(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        for attempt in range(3):
            guess = {"exp_month": (card["exp_month"] + attempt) % 12 + 1}
            body = (await authorize(client, card, 1_00, **guess)).json()
            assert (body["status"], body["decline_reason"]) == ("declined", "expiry_mismatch")
            assert (await _card_row(app, card["id"]))["cvv_failures"] == attempt + 1
        row = await _card_row(app, card["id"])
        assert (row["status"], row["frozen_reason"]) == ("frozen", "cvv_attempts_exceeded")
        # With the expiry found by guessing, nothing is left to try the CVV with.
        blocked = (await authorize(client, card, 1_00)).json()
        assert blocked["decline_reason"] == "cvv_attempts_exceeded"

    async def test_expiry_and_cvv_guesses_share_one_budget(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        wrong_month = card["exp_month"] % 12 + 1
        await authorize(client, card, 1_00, exp_month=wrong_month)
        await authorize(client, card, 1_00, exp_year=card["exp_year"] + 1)
        last = (await authorize(client, card, 1_00, cvv=_wrong_cvv(card))).json()
        assert last["decline_reason"] == "cvv_mismatch"
        row = await _card_row(app, card["id"])
        assert (row["cvv_failures"], row["status"]) == (3, "frozen")

    async def test_a_frozen_card_does_not_count_wrong_cvvs(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        await client.post(f"/v1/cards/{card['id']}/freeze", headers=member.headers)
        for _ in range(4):
            body = (await authorize(client, card, 1_00, cvv=_wrong_cvv(card))).json()
            assert body["decline_reason"] == "card_frozen"
        row = await _card_row(app, card["id"])
        assert (row["frozen_reason"], row["cvv_failures"]) == ("owner", 0)

    @pytest.mark.parametrize("settings_overrides", [{"card_cvv_max_failures": 1}], indirect=True)
    async def test_the_number_of_failures_is_a_setting(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        await authorize(client, card, 1_00, cvv=_wrong_cvv(card))
        assert (await _card_row(app, card["id"]))["frozen_reason"] == "cvv_attempts_exceeded"

    async def test_concurrent_wrong_cvvs_freeze_the_card_after_exactly_the_limit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        wrong = _wrong_cvv(card)
        attempts = [authorize(client, card, 1_00, cvv=wrong) for _ in range(12)]
        attempts += [authorize(client, card, 1_00) for _ in range(4)]
        responses = await asyncio.gather(*attempts)
        assert all(response.status_code == 201 for response in responses)
        reasons = [response.json()["decline_reason"] for response in responses]
        # However they interleave, exactly three wrong CVVs are checked before the freeze;
        # everything after it is declined without checking the CVV.
        assert reasons.count("cvv_mismatch") == 3
        assert set(reasons) <= {None, "cvv_mismatch", "cvv_attempts_exceeded"}
        row = await _card_row(app, card["id"])
        assert (row["status"], row["frozen_reason"]) == ("frozen", "cvv_attempts_exceeded")
        assert row["cvv_failures"] == 3
        frozen = [event for event in await _audit_events(app) if event.event_type == "card.frozen"]
        assert len(frozen) == 1
        money = await balance(client, member, account["id"])
        assert money["held"] == 1_00 * reasons.count(None)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok


DAILY_100 = [{"daily_outgoing_limit_minor": 100_00}]


async def _capture(client: httpx.AsyncClient, authorization_id: str, amount: int) -> None:
    response = await client.post(
        f"/v1/card-authorizations/{authorization_id}/capture",
        json={"amount": amount},
        headers=keyed(NETWORK),
    )
    assert response.status_code == 200, response.text


class TestDailyOutgoingLimit:
    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_holds_count_toward_the_accounts_daily_outgoing_limit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        await approved(client, card, 60_00)
        over = (await authorize(client, card, 40_01)).json()
        assert (over["status"], over["decline_reason"]) == ("declined", "daily_limit_exceeded")
        withdrawal = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 40_01},
            headers=keyed(member.headers),
        )
        assert withdrawal.status_code == 409
        assert withdrawal.json()["code"] == "daily_limit_exceeded"
        await approved(client, card, 40_00)
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["held"]) == (500_00, 100_00)
        declines = [
            json.loads(event.details)
            for event in await _audit_events(app)
            if event.event_type == "card.authorization" and event.outcome == "declined"
        ]
        assert [details["reason"] for details in declines] == ["daily_limit_exceeded"]

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_a_capture_does_not_count_twice_and_a_partial_one_frees_the_rest(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        full = await approved(client, card, 60_00)
        await _capture(client, full, 60_00)
        partial = await approved(client, card, 30_00)
        await _capture(client, partial, 10_00)
        # Used today: 60.00 + 10.00; 30.00 left.
        assert (await authorize(client, card, 30_01)).json()["decline_reason"] == (
            "daily_limit_exceeded"
        )
        await approved(client, card, 30_00)
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["held"]) == (430_00, 30_00)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_a_void_on_the_same_day_gives_the_amount_back(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member, balance_minor=500_00)
        voided = await approved(client, card, 100_00)
        assert (await authorize(client, card, 1)).json()["decline_reason"] == (
            "daily_limit_exceeded"
        )
        response = await client.post(f"/v1/card-authorizations/{voided}/void", headers=NETWORK)
        assert response.status_code == 200
        await approved(client, card, 100_00)

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_a_hold_counts_on_the_day_it_is_placed_not_on_the_day_it_is_captured(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        day_one = utcnow().replace(hour=10, minute=0, second=0, microsecond=0)
        _set_clock(app, day_one)
        first = await approved(client, card, 100_00)
        _set_clock(app, day_one + dt.timedelta(days=1))
        await _capture(client, first, 100_00)
        # The capture did not use the second day's limit.
        await approved(client, card, 100_00)
        money = await balance(client, member, account["id"])
        assert (money["balance"], money["held"]) == (400_00, 100_00)
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_the_accounts_own_limit_applies_to_holds(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        async with app.state.db.engine.begin() as connection:
            await connection.execute(
                update(Account)
                .where(Account.id == uuid.UUID(account["id"]))
                .values(daily_outgoing_limit_minor=300_00)
            )
        await approved(client, card, 250_00)
        assert (await authorize(client, card, 50_01)).json()["decline_reason"] == (
            "daily_limit_exceeded"
        )
        await approved(client, card, 50_00)

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_concurrent_authorizations_never_pass_the_daily_limit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        responses = await asyncio.gather(*(authorize(client, card, 10_00) for _ in range(15)))
        reasons = [response.json()["decline_reason"] for response in responses]
        assert reasons.count(None) == 10
        assert reasons.count("daily_limit_exceeded") == 5
        assert (await balance(client, member, account["id"]))["held"] == 100_00


class TestCancellationVoidsHolds:
    async def test_cancelling_a_card_voids_its_open_holds_in_the_same_commit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=100_00)
        first = await approved(client, card, 10_00)
        second = await approved(client, card, 20_00)
        captured = await approved(client, card, 5_00)
        await _capture(client, captured, 5_00)
        before = await balance(client, member, account["id"])
        assert (before["balance"], before["available_balance"]) == (95_00, 65_00)

        cancelled = await client.post(f"/v1/cards/{card['id']}/cancel", headers=member.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        after = await balance(client, member, account["id"])
        assert (after["balance"], after["available_balance"], after["held"]) == (95_00, 95_00, 0)
        statuses = {
            item["id"]: item["status"] for item in await _history(client, member, card["id"])
        }
        assert statuses == {first: "voided", second: "voided", captured: "captured"}
        late = await client.post(
            f"/v1/card-authorizations/{first}/capture",
            json={"amount": 10_00},
            headers=keyed(NETWORK),
        )
        assert late.status_code == 409
        assert late.json()["code"] == "authorization_not_open"

        events = await _audit_events(app)
        voids = [
            json.loads(event.details)
            for event in events
            if event.event_type == "card.void" and event.target_id in {first, second}
        ]
        assert sorted(details["released_minor"] for details in voids) == [10_00, 20_00]
        assert {details["reason"] for details in voids} == {"card_cancelled"}
        (cancel,) = [event for event in events if event.event_type == "card.cancelled"]
        assert json.loads(cancel.details) == {
            "by_admin": False,
            "previous_status": "active",
            "voided_holds": 2,
            "released_minor": 30_00,
        }
        async with app.state.db.sessionmaker() as session:
            assert (await verify_ledger(session)).ok

    @pytest.mark.parametrize("settings_overrides", DAILY_100, indirect=True)
    async def test_holds_voided_by_a_cancellation_give_the_days_limit_back(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member, balance_minor=500_00)
        await approved(client, card, 100_00)
        cancelled = await client.post(f"/v1/cards/{card['id']}/cancel", headers=member.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert [item["status"] for item in await _history(client, member, card["id"])] == ["voided"]
        replacement = await issue_card(client, member, account["id"])
        # The day's limit is the account's: only the voided hold gave it back.
        await approved(client, replacement, 100_00)

    async def test_a_lapsed_hold_is_released_as_expired_by_the_cancellation(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        _set_clock(app, start)
        lapsed = await approved(client, card, 10_00)
        _set_clock(app, start + dt.timedelta(days=8))
        async with app.state.db.sessionmaker() as session:
            # Nothing has read the card since, so the hold is still open.
            status = await session.scalar(
                select(CardAuthorization.status).where(CardAuthorization.id == uuid.UUID(lapsed))
            )
        assert status == "approved"
        cancelled = await client.post(f"/v1/cards/{card['id']}/cancel", headers=member.headers)
        assert cancelled.status_code == 200
        history = await _history(client, member, card["id"])
        assert [item["status"] for item in history] == ["expired"]
        assert (await balance(client, member, account["id"]))["held"] == 0
