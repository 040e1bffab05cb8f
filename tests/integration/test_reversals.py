"""Reversals (admin) and card refunds (card network): new entries mirroring a posted one,
linked to it, never adding up to more than it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from banking.ledger.models import JournalEntry
from tests.cards_support import NETWORK, approved, capture, issue_card
from tests.factories import Member, keyed, make_member, make_staff, open_account, withdraw
from tests.history_shape import assert_history_shape
from tests.integration.test_ledger_verify import run_verify


async def _transfer(
    client: httpx.AsyncClient,
    member: Member,
    source: dict[str, Any],
    target: dict[str, Any],
    amount: int,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_number": target["number"],
            "amount": amount,
        },
        headers=keyed(member.headers),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class Reversed:
    """A reversal asked by one admin (202, an approval) and approved by a second: the
    answer as the tests read it, 201 with the reversal entry, or the refusal."""

    def __init__(self, asked: httpx.Response, decided: httpx.Response | None) -> None:
        self.asked, self.decided = asked, decided
        self.headers = asked.headers
        self.text = asked.text + (decided.text if decided is not None else "")
        approval = decided.json() if decided is not None else None
        if approval is None:
            self.status_code, self.body = asked.status_code, asked.json()
        elif decided is not None and decided.status_code != 200:
            self.status_code, self.body = decided.status_code, approval
        elif approval["status"] == "executed":
            self.status_code = 201
            self.body = {
                "id": approval["entry_id"],
                "kind": "reversal",
                "reversed_entry_id": approval["reversed_entry_id"],
                "amount": approval["amount"],
                "source_account_id": approval["source_account_id"],
                "target_account_id": approval["target_account_id"],
                "description": approval["description"],
                "created_at": approval["decided_at"],
                "approval": approval,
            }
        else:
            self.status_code = 409
            self.body = {"code": approval["decline_reason"], "approval": approval}

    def json(self) -> dict[str, Any]:
        return self.body  # type: ignore[no-any-return]


CHECKERS: dict[str, Member] = {}


async def _reverse(
    client: httpx.AsyncClient,
    admin: Member,
    entry_id: str,
    *,
    key: str | None = None,
    checker: Member | None = None,
    **body: Any,
) -> Reversed:
    asked = await client.post(
        f"/v1/admin/entries/{entry_id}/reverse",
        json={"reason": "Sent by mistake", **body},
        headers=keyed(admin.headers, key),
    )
    if asked.status_code != 202:
        return Reversed(asked, None)
    second = checker or CHECKERS.get(admin.user_id)
    assert second is not None, "no second admin for this maker"
    decided = await client.post(
        f"/v1/approvals/{asked.json()['id']}/approve", headers=second.headers
    )
    return Reversed(asked, decided)


async def _balance(client: httpx.AsyncClient, member: Member, account_id: str) -> int:
    response = await client.get(f"/v1/accounts/{account_id}/balance", headers=member.headers)
    value: int = response.json()["balance"]
    return value


class Parties:
    def __init__(
        self, payer: Member, payee: Member, admin: Member, checker: Member, source: Any,
        target: Any,
    ) -> None:  # fmt: skip
        self.payer, self.payee, self.admin, self.checker = payer, payee, admin, checker
        self.source, self.target = source, target


@pytest.fixture
async def parties(client: httpx.AsyncClient, app: FastAPI) -> Parties:
    payer = await make_member(client)
    payee = await make_member(client)
    admin = await make_staff(client, app, "admin")
    checker = await make_staff(client, app, "admin")
    CHECKERS[admin.user_id] = checker
    source = await open_account(client, payer, balance_minor=100_00)
    target = await open_account(client, payee)
    return Parties(payer, payee, admin, checker, source, target)


class TestReversals:
    async def test_a_whole_reversal_gives_the_money_back_and_links_the_original(
        self, client: httpx.AsyncClient, parties: Parties, database_url: str
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        response = await _reverse(client, p.admin, sent["id"])
        assert response.status_code == 201, response.text
        reversal = response.json()
        assert reversal["kind"] == "reversal"
        assert reversal["reversed_entry_id"] == sent["id"]
        assert reversal["amount"] == 30_00
        assert reversal["source_account_id"] == p.target["id"]
        assert reversal["target_account_id"] == p.source["id"]
        assert reversal["description"] == "Sent by mistake"
        assert await _balance(client, p.payer, p.source["id"]) == 100_00
        assert await _balance(client, p.payee, p.target["id"]) == 0
        # Both sides see the reversal as its own line, linked to the original; the
        # original is unchanged.
        for member, account, sign in ((p.payer, p.source, 1), (p.payee, p.target, -1)):
            page = await client.get(
                f"/v1/accounts/{account['id']}/transactions", headers=member.headers
            )
            assert_history_shape(page)
            items = page.json()["items"]
            assert items[0]["kind"] == "reversal"
            assert items[0]["id"] == reversal["id"]
            assert items[0]["reversed_entry_id"] == sent["id"]
            assert items[0]["amount"] == sign * 30_00
            original = next(item for item in items if item["id"] == sent["id"])
            assert original["amount"] == -sign * 30_00
            assert original["reversed_entry_id"] is None
        month = reversal["created_at"][:7]
        statement = (
            await client.get(
                f"/v1/accounts/{p.source['id']}/statements/{month}", headers=p.payer.headers
            )
        ).json()
        kinds = [line["kind"] for line in statement["lines"]]
        assert kinds.count("reversal") == 1
        assert kinds.count("transfer") == 1
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_partial_reversals_never_add_up_to_more_than_the_entry(
        self, client: httpx.AsyncClient, parties: Parties, app: FastAPI
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        assert (await _reverse(client, p.admin, sent["id"], amount=10_00)).status_code == 201
        assert (await _reverse(client, p.admin, sent["id"], amount=15_00)).status_code == 201
        too_much = await _reverse(client, p.admin, sent["id"], amount=5_01)
        assert too_much.status_code == 409, too_much.text
        assert too_much.json()["code"] == "already_reversed"
        # Without an amount: all that is left.
        rest = await _reverse(client, p.admin, sent["id"])
        assert rest.status_code == 201, rest.text
        assert rest.json()["amount"] == 5_00
        again = await _reverse(client, p.admin, sent["id"])
        assert again.status_code == 409
        assert again.json()["code"] == "already_reversed"
        assert await _balance(client, p.payer, p.source["id"]) == 100_00
        # Two requests for the same rest, both fitting when asked: the second approval is
        # declined by the ledger and recorded.
        other = await _transfer(client, p.payer, p.source, p.target, 20_00)
        asked = [
            await client.post(
                f"/v1/admin/entries/{other['id']}/reverse",
                json={"reason": "duplicate"},
                headers=keyed(p.admin.headers),
            )
            for _ in range(2)
        ]
        assert [response.status_code for response in asked] == [202, 202]
        decided = [
            (
                await client.post(
                    f"/v1/approvals/{response.json()['id']}/approve", headers=p.checker.headers
                )
            ).json()
            for response in asked
        ]
        assert [(d["status"], d["decline_reason"]) for d in decided] == [
            ("executed", None),
            ("failed", "already_reversed"),
        ]
        # The refusal at execution is recorded as a declined reversal.
        async with app.state.db.sessionmaker() as session:
            declined = (
                (
                    await session.execute(
                        select(JournalEntry.decline_reason).where(
                            JournalEntry.reversed_entry_id == uuid.UUID(other["id"]),
                            JournalEntry.status == "declined",
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert declined == ["already_reversed"]

    async def test_a_retry_with_the_same_key_replays_and_reverses_once(
        self, client: httpx.AsyncClient, parties: Parties
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        url = f"/v1/admin/entries/{sent['id']}/reverse"
        body = {"reason": "Sent by mistake", "amount": 10_00}
        first = await client.post(url, json=body, headers=keyed(p.admin.headers, "fix-1"))
        second = await client.post(url, json=body, headers=keyed(p.admin.headers, "fix-1"))
        assert first.status_code == second.status_code == 202
        assert second.headers.get("Idempotent-Replayed") == "true"
        pending = first.json()
        assert pending["id"] == second.json()["id"]
        assert (pending["kind"], pending["status"]) == ("entry_reversal", "pending_approval")
        assert pending["reversed_entry_id"] == sent["id"]
        # Nothing moves before a second admin approves; the maker and the members may not.
        assert await _balance(client, p.payer, p.source["id"]) == 70_00
        decide = f"/v1/approvals/{pending['id']}/approve"
        for who, status in ((p.admin, 409), (p.payee, 409), (p.payer, 409)):
            refused = await client.post(decide, headers=who.headers)
            assert refused.status_code == status, refused.text
            assert refused.json()["code"] == "self_approval"
        approved = await client.post(decide, headers=p.checker.headers)
        assert approved.json()["status"] == "executed"
        assert (await client.post(decide, headers=p.checker.headers)).status_code == 409
        assert await _balance(client, p.payer, p.source["id"]) == 80_00
        missing = await client.post(
            f"/v1/admin/entries/{sent['id']}/reverse",
            json={"reason": "x"},
            headers=p.admin.headers,
        )
        assert missing.status_code == 400
        assert missing.json()["code"] == "idempotency_key_required"

    async def test_a_reversal_below_zero_is_declined_and_moves_nothing(
        self, client: httpx.AsyncClient, parties: Parties
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        spent = await withdraw(client, p.payee, p.target["id"], 25_00)
        assert spent.status_code == 201, spent.text
        refused = await _reverse(client, p.admin, sent["id"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "insufficient_funds"
        assert await _balance(client, p.payee, p.target["id"]) == 5_00
        assert await _balance(client, p.payer, p.source["id"]) == 70_00
        # What is there can still be taken back.
        partial = await _reverse(client, p.admin, sent["id"], amount=5_00)
        assert partial.status_code == 201, partial.text
        assert await _balance(client, p.payee, p.target["id"]) == 0

    async def test_a_freeze_does_not_stop_a_reversal(
        self, client: httpx.AsyncClient, parties: Parties
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        frozen = await client.post(
            f"/v1/admin/accounts/{p.target['id']}/freeze",
            json={"reason": "fraud"},
            headers=p.admin.headers,
        )
        assert frozen.status_code == 200, frozen.text
        response = await _reverse(client, p.admin, sent["id"])
        assert response.status_code == 201, response.text
        assert await _balance(client, p.payee, p.target["id"]) == 0

    async def test_only_posted_original_entries_can_be_reversed(
        self, client: httpx.AsyncClient, parties: Parties
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        reversal = (await _reverse(client, p.admin, sent["id"], amount=1_00)).json()
        twice = await _reverse(client, p.admin, reversal["id"])
        assert twice.status_code == 409
        assert twice.json()["code"] == "not_reversible"
        declined = await withdraw(client, p.payer, p.source["id"], 999_00)
        assert declined.status_code == 409
        refused = await _reverse(client, p.admin, declined.json()["entry_id"])
        assert refused.status_code == 409
        assert refused.json()["code"] == "not_reversible"
        unknown = await _reverse(client, p.admin, str(uuid.uuid4()))
        assert unknown.status_code == 404

    async def test_members_and_support_cannot_reverse(
        self, client: httpx.AsyncClient, parties: Parties, app: FastAPI
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        support = await make_staff(client, app, "support")
        for who in (p.payer, p.payee, support):
            response = await _reverse(client, who, sent["id"])
            assert response.status_code == 403, response.text
        assert await _balance(client, p.payer, p.source["id"]) == 70_00

    async def test_a_deposit_reversal_takes_the_cash_back(
        self, client: httpx.AsyncClient, parties: Parties
    ) -> None:
        p = parties
        items = (
            await client.get(f"/v1/accounts/{p.source['id']}/transactions", headers=p.payer.headers)
        ).json()["items"]
        deposit_id = items[0]["id"]
        response = await _reverse(client, p.admin, deposit_id, amount=40_00)
        assert response.status_code == 201, response.text
        assert await _balance(client, p.payer, p.source["id"]) == 60_00


class TestCardRefunds:
    async def test_the_network_refunds_a_capture_in_parts_never_beyond_it(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=100_00)
        card = await issue_card(client, member, account["id"])
        authorization = await approved(client, card, 40_00)
        assert (await capture(client, authorization, 30_00)).status_code == 200
        url = f"/v1/card-authorizations/{authorization}/refund"
        first = await client.post(
            url, json={"amount": 10_00}, headers={**NETWORK, "Idempotency-Key": "r-1"}
        )
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["kind"] == "card_refund"
        assert body["amount"] == 10_00
        assert body["refunded_amount"] == 10_00
        assert body["captured_amount"] == 30_00
        replay = await client.post(
            url, json={"amount": 10_00}, headers={**NETWORK, "Idempotency-Key": "r-1"}
        )
        assert replay.headers.get("Idempotent-Replayed") == "true"
        over = await client.post(
            url, json={"amount": 20_01}, headers={**NETWORK, "Idempotency-Key": "r-2"}
        )
        assert over.status_code == 409, over.text
        assert over.json()["code"] == "already_reversed"
        rest = await client.post(url, headers={**NETWORK, "Idempotency-Key": "r-3"})
        assert rest.status_code == 201, rest.text
        assert rest.json()["amount"] == 20_00
        assert rest.json()["refunded_amount"] == 30_00
        assert await _balance(client, member, account["id"]) == 100_00
        items = (
            await client.get(f"/v1/accounts/{account['id']}/transactions", headers=member.headers)
        ).json()["items"]
        assert [item["kind"] for item in items[:2]] == ["card_refund", "card_refund"]
        assert items[0]["reversed_entry_id"] == body["reversed_entry_id"]
        # A staff reversal of the same capture shares the cap.
        admin = await make_staff(client, app, "admin")
        staff = await _reverse(client, admin, body["reversed_entry_id"], amount=1)
        assert staff.status_code == 409
        assert staff.json()["code"] == "already_reversed"
        without_key = await client.post(url, headers=NETWORK)
        assert without_key.status_code == 400
        no_network = await client.post(url, headers={"Idempotency-Key": "r-4"})
        assert no_network.status_code == 401
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_an_uncaptured_authorization_cannot_be_refunded(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=100_00)
        card = await issue_card(client, member, account["id"])
        authorization = await approved(client, card, 40_00)
        response = await client.post(
            f"/v1/card-authorizations/{authorization}/refund",
            headers={**NETWORK, "Idempotency-Key": "r-open"},
        )
        assert response.status_code == 409
        assert response.json()["code"] == "authorization_not_captured"


class TestVerifyReversals:
    async def test_verify_names_reversals_beyond_their_entry(
        self, client: httpx.AsyncClient, parties: Parties, app: FastAPI, database_url: str
    ) -> None:
        p = parties
        sent = await _transfer(client, p.payer, p.source, p.target, 30_00)
        reversal = (await _reverse(client, p.admin, sent["id"], amount=20_00)).json()
        passed = run_verify(database_url)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        # A second reversal of 20.00 planted straight into the table (no postings:
        # `entry_shape` names that too; `reversal_sum` names the original).
        # Through the app's write gate (as its own writers take turns), not SQLite's busy
        # handler, which the audit sealer can starve under load.
        from banking.core.db import write_transaction

        async with app.state.db.sessionmaker() as connection, write_transaction(connection):
            row = (
                (
                    await connection.execute(
                        select(JournalEntry.__table__).where(
                            JournalEntry.id == uuid.UUID(reversal["id"])
                        )
                    )
                )
                .mappings()
                .one()
            )
            await connection.execute(
                insert(JournalEntry.__table__).values({**row, "id": uuid.uuid4()})
            )
        failed = run_verify(database_url)
        assert failed.returncode == 1
        assert any(
            line.startswith("reversal_sum") and sent["id"] in line
            for line in failed.stderr.splitlines()
        ), failed.stderr


class TestClient:
    async def test_the_client_reverses_and_refunds(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        from banking import client as bank
        from tests.conftest import TEST_SECRETS

        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        checker = await make_staff(client, app, "admin")
        account = await open_account(client, member, balance_minor=50_00)
        card = await issue_card(client, member, account["id"])
        authorization = await approved(client, card, 20_00)
        captured = await capture(client, authorization, 20_00)
        capture_entry = captured.json()["capture_entry_id"]
        transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 52010))
        async with (
            bank.AsyncBankingClient("http://testserver", transport=transport) as staff,
            bank.AsyncBankingClient(
                "http://testserver",
                transport=transport,
                network_key=TEST_SECRETS["card_network_api_key"],
            ) as network,
        ):
            await staff.login(admin.email, admin.password)
            refund = await network.refund_authorization(authorization, 5_00)
            assert (refund.kind, refund.amount, refund.refunded_amount) == (
                "card_refund",
                5_00,
                5_00,
            )
            assert refund.reversed_entry_id == capture_entry
            asked = await staff.reverse_entry(capture_entry, "goodwill")
            assert (asked.kind, asked.status, asked.amount) == (
                "entry_reversal",
                "pending_approval",
                15_00,
            )
            await staff.login(checker.email, checker.password)
            decided = await staff.approve(asked.id)
            assert decided["status"] == "executed"
            with pytest.raises(bank.AlreadyReversed):
                await staff.reverse_entry(capture_entry, "again", amount=1)
        history = (
            await client.get(f"/v1/accounts/{account['id']}/transactions", headers=member.headers)
        ).json()["items"]
        assert [item["kind"] for item in history[:2]] == ["reversal", "card_refund"]
        assert await _balance(client, member, account["id"]) == 50_00
