from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking.ledger.verify import verify_ledger
from tests.factories import Member, make_member, make_staff, open_account


def key_headers(member: Member, key: str | None = None) -> dict[str, str]:
    return {**member.headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def balance_of(client: httpx.AsyncClient, member: Member, account: dict[str, Any]) -> int:
    response = await client.get(
        f"/v1/accounts/{account['id']}/balance?verify=true", headers=member.headers
    )
    assert response.json()["consistent"] is True, response.text
    balance: int = response.json()["balance"]
    return balance


async def transfer(
    client: httpx.AsyncClient,
    member: Member,
    source: dict[str, Any],
    amount: int,
    *,
    target: dict[str, Any] | None = None,
    number: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"source_account_id": source["id"], "amount": amount}
    if number is not None:
        body["target_account_number"] = number
    else:
        assert target is not None
        body["target_account_id"] = target["id"]
    return await client.post("/v1/transfers", json=body, headers=key_headers(member, key))


async def declined(
    client: httpx.AsyncClient, member: Member, account: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/accounts/{account['id']}/transactions?status=declined", headers=member.headers
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def assert_ledger_verifies(app: FastAPI) -> None:
    async with app.state.db.sessionmaker() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems


class TestWorkedExamples:
    async def test_deposit_withdrawal_and_transfers_move_exact_amounts(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        checking = await open_account(client, alice)
        savings = await open_account(client, alice, type="savings")
        bobs = await open_account(client, bob)

        deposit = await client.post(
            f"/v1/accounts/{checking['id']}/deposits",
            json={"amount": 100_00, "description": "Salary"},
            headers=key_headers(alice),
        )
        assert deposit.status_code == 201
        assert deposit.json()["kind"] == "deposit"
        assert deposit.json()["amount"] == 100_00
        assert deposit.json()["balance_after"] == 100_00

        own = await transfer(client, alice, checking, 30_00, target=savings)
        assert own.status_code == 201, own.text
        assert own.json()["balance_after"] == 70_00
        assert own.json()["target_account_id"] == savings["id"]

        other = await transfer(client, alice, checking, 25_50, number=bobs["number"])
        assert other.status_code == 201
        assert other.json()["target_account_id"] is None
        assert other.json()["target_account_number"] == "********" + bobs["number"][-4:]
        assert other.json()["balance_after"] == 44_50

        withdrawal = await client.post(
            f"/v1/accounts/{savings['id']}/withdrawals",
            json={"amount": 10_01},
            headers=key_headers(alice),
        )
        assert withdrawal.status_code == 201
        assert withdrawal.json()["amount"] == -10_01
        assert withdrawal.json()["balance_after"] == 19_99

        assert await balance_of(client, alice, checking) == 44_50
        assert await balance_of(client, alice, savings) == 19_99
        assert await balance_of(client, bob, bobs) == 25_50

        history = await client.get(
            f"/v1/accounts/{checking['id']}/transactions", headers=alice.headers
        )
        items = history.json()["items"]
        assert [(item["kind"], item["amount"], item["balance_after"]) for item in items] == [
            ("transfer", -25_50, 44_50),
            ("transfer", -30_00, 70_00),
            ("deposit", 100_00, 100_00),
        ]
        assert items[0]["id"] == other.json()["id"]
        assert items[0]["counterparty_account_number"].endswith(bobs["number"][-4:])
        assert items[2]["description"] == "Salary"
        bob_history = await client.get(
            f"/v1/accounts/{bobs['id']}/transactions", headers=bob.headers
        )
        assert [item["id"] for item in bob_history.json()["items"]] == [other.json()["id"]]
        assert bob_history.json()["items"][0]["amount"] == 25_50
        await assert_ledger_verifies(app)


class TestAmountBounds:
    @pytest.mark.parametrize("amount", [2**63, 10**30, "100", 10.0, True, 0, -5, None])
    async def test_amounts_that_are_not_positive_bounded_integers_are_rejected(
        self, client: httpx.AsyncClient, amount: object
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        other = await open_account(client, member)
        for method_path, body in (
            (f"/v1/accounts/{account['id']}/deposits", {"amount": amount}),
            (f"/v1/accounts/{account['id']}/withdrawals", {"amount": amount}),
            (
                "/v1/transfers",
                {
                    "source_account_id": account["id"],
                    "target_account_id": other["id"],
                    "amount": amount,
                },
            ),
        ):
            response = await client.post(method_path, json=body, headers=key_headers(member))
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "validation_error"
        assert await balance_of(client, member, account) == 1_000

    async def test_a_transfer_needs_exactly_one_target(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        other = await open_account(client, member)
        response = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": account["id"],
                "target_account_id": other["id"],
                "target_account_number": other["number"],
                "amount": 1,
            },
            headers=key_headers(member),
        )
        assert response.status_code == 422


class TestDeclines:
    async def test_insufficient_funds_is_declined_and_recorded(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=500)
        response = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 501},
            headers=key_headers(member),
        )
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "insufficient_funds"
        items = await declined(client, member, account)
        assert [(item["id"], item["decline_reason"], item["amount"]) for item in items] == [
            (body["entry_id"], "insufficient_funds", -501)
        ]
        assert await balance_of(client, member, account) == 500

    async def test_a_frozen_account_refuses_debits_but_accepts_credits(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        account = await open_account(client, member, balance_minor=1_000)
        other = await open_account(client, member, balance_minor=1_000)
        freeze = await client.post(
            f"/v1/admin/accounts/{account['id']}/freeze",
            json={"reason": "fraud review"},
            headers=admin.headers,
        )
        assert freeze.status_code == 200
        assert freeze.json()["status"] == "frozen"
        withdrawal = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 1},
            headers=key_headers(member),
        )
        assert withdrawal.json()["code"] == "account_frozen"
        outgoing = await transfer(client, member, account, 1, target=other)
        assert outgoing.json()["code"] == "account_frozen"
        incoming = await transfer(client, member, other, 200, target=account)
        assert incoming.status_code == 201
        deposit = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 5},
            headers=key_headers(member),
        )
        assert deposit.status_code == 201
        assert [item["decline_reason"] for item in await declined(client, member, account)] == [
            "account_frozen",
            "account_frozen",
        ]
        unfreeze = await client.post(
            f"/v1/admin/accounts/{account['id']}/unfreeze", headers=admin.headers
        )
        # Lifting the freeze takes a second admin's approval.
        checker = await make_staff(client, app, "admin")
        approved = await client.post(
            f"/v1/approvals/{unfreeze.json()['id']}/approve", headers=checker.headers
        )
        assert approved.json()["status"] == "executed"
        assert (await transfer(client, member, account, 1, target=other)).status_code == 201
        assert await balance_of(client, member, account) == 1_204

    async def test_a_transfer_between_currencies_is_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        dollars = await open_account(client, member, balance_minor=1_000)
        euros = await open_account(client, member, currency="EUR")
        response = await transfer(client, member, dollars, 100, target=euros)
        assert response.status_code == 422
        assert response.json()["code"] == "currency_mismatch"
        assert [item["decline_reason"] for item in await declined(client, member, dollars)] == [
            "currency_mismatch"
        ]

    async def test_a_transfer_to_the_same_account_is_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        response = await transfer(client, member, account, 100, target=account)
        assert response.status_code == 422
        assert response.json()["code"] == "same_account"
        assert [item["decline_reason"] for item in await declined(client, member, account)] == [
            "same_account"
        ]

    async def test_a_transfer_to_a_closed_account_is_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=1_000)
        closed = await open_account(client, bob)
        await client.post(f"/v1/accounts/{closed['id']}/close", headers=bob.headers)
        response = await transfer(client, alice, source, 100, number=closed["number"])
        assert response.json()["code"] == "account_closed"
        assert await balance_of(client, alice, source) == 1_000

    @pytest.mark.parametrize("settings_overrides", [{"max_movement_minor": 1_000}], indirect=True)
    async def test_an_amount_above_the_movement_maximum_is_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        response = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 1_001},
            headers=key_headers(member),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "amount_too_large"
        assert [item["decline_reason"] for item in await declined(client, member, account)] == [
            "amount_too_large"
        ]

    @pytest.mark.parametrize("settings_overrides", [{"max_balance_minor": 10_000}], indirect=True)
    async def test_a_credit_beyond_the_maximum_balance_is_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=9_000)
        response = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 1_001},
            headers=key_headers(member),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "balance_limit_exceeded"
        exact = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 1_000},
            headers=key_headers(member),
        )
        assert exact.status_code == 201
        assert [item["decline_reason"] for item in await declined(client, member, account)] == [
            "balance_limit_exceeded"
        ]

    @pytest.mark.parametrize(
        "settings_overrides", [{"daily_outgoing_limit_minor": 500}], indirect=True
    )
    async def test_debits_beyond_the_daily_limit_are_declined(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=5_000)
        other = await open_account(client, member)
        path = f"/v1/accounts/{account['id']}/withdrawals"
        assert (
            await client.post(path, json={"amount": 300}, headers=key_headers(member))
        ).is_success
        assert (await transfer(client, member, account, 200, target=other)).status_code == 201
        response = await client.post(path, json={"amount": 1}, headers=key_headers(member))
        assert response.status_code == 409
        assert response.json()["code"] == "daily_limit_exceeded"
        assert [item["decline_reason"] for item in await declined(client, member, account)] == [
            "daily_limit_exceeded"
        ]
        assert await balance_of(client, member, account) == 4_500


class TestIdempotency:
    async def test_a_transfer_without_a_key_is_rejected(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=1_000)
        target = await open_account(client, member)
        response = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": source["id"],
                "target_account_id": target["id"],
                "amount": 1,
            },
            headers=member.headers,
        )
        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_required"

    @pytest.mark.parametrize("collection", ["deposits", "withdrawals"])
    async def test_cash_without_a_key_is_refused_and_moves_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, collection: str
    ) -> None:
        # Seen before: the same withdrawal of 300 sent twice without a key was taken twice.
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        path = f"/v1/accounts/{account['id']}/{collection}"
        for _ in range(2):
            response = await client.post(path, json={"amount": 300}, headers=member.headers)
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "idempotency_key_required"
        assert await balance_of(client, member, account) == 1_000
        assert await declined(client, member, account) == []
        await assert_ledger_verifies(app)

    async def test_the_same_key_and_body_replay_the_first_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=1_000)
        target = await open_account(client, member)
        first = await transfer(client, member, source, 400, target=target, key="pay-rent")
        again = await transfer(client, member, source, 400, target=target, key="pay-rent")
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert again.json() == first.json()
        assert await balance_of(client, member, source) == 600

    async def test_the_same_key_with_another_body_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=1_000)
        target = await open_account(client, member)
        await transfer(client, member, source, 400, target=target, key="k")
        response = await transfer(client, member, source, 401, target=target, key="k")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert await balance_of(client, member, source) == 600

    async def test_keys_belong_to_one_member(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        a_source = await open_account(client, alice, balance_minor=1_000)
        a_target = await open_account(client, alice)
        b_source = await open_account(client, bob, balance_minor=1_000)
        b_target = await open_account(client, bob)
        assert (await transfer(client, alice, a_source, 1, target=a_target, key="same")).is_success
        response = await transfer(client, bob, b_source, 1, target=b_target, key="same")
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers

    async def test_a_declined_answer_is_replayed_too(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=100)
        headers = key_headers(member, "too-much")
        path = f"/v1/accounts/{account['id']}/withdrawals"
        first = await client.post(path, json={"amount": 150}, headers=headers)
        deposit = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 100},
            headers=key_headers(member),
        )
        assert deposit.status_code == 201
        again = await client.post(path, json={"amount": 150}, headers=headers)
        assert first.status_code == again.status_code == 409
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert len(await declined(client, member, account)) == 1
        assert await balance_of(client, member, account) == 200

    async def test_ten_parallel_retries_move_money_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        source = await open_account(client, member, balance_minor=10_000)
        target = await open_account(client, member)
        responses = await asyncio.gather(
            *(transfer(client, member, source, 2_500, target=target, key="once") for _ in range(10))
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses.count(201) >= 1
        assert set(statuses) <= {201, 409}
        created = {response.json()["id"] for response in responses if response.status_code == 201}
        assert len(created) == 1
        for response in responses:
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_key_in_flight"
        assert await balance_of(client, member, source) == 7_500
        assert await balance_of(client, member, target) == 2_500
        await assert_ledger_verifies(app)

    async def test_an_invalid_key_is_rejected(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        response = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 1},
            headers={**member.headers, "Idempotency-Key": "x" * 256},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_invalid"


class TestHistory:
    async def test_pages_follow_the_cursor_without_gaps_or_repeats(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        for amount in range(1, 8):
            await client.post(
                f"/v1/accounts/{account['id']}/deposits",
                json={"amount": amount},
                headers=key_headers(member),
            )
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = await client.get(
                f"/v1/accounts/{account['id']}/transactions", params=params, headers=member.headers
            )
            body = page.json()
            seen += [item["amount"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [7, 6, 5, 4, 3, 2, 1]

    async def test_filters_by_kind_direction_and_date(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        other = await open_account(client, member)
        await transfer(client, member, account, 100, target=other)
        await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 50},
            headers=key_headers(member),
        )
        path = f"/v1/accounts/{account['id']}/transactions"

        async def kinds(**params: Any) -> list[str]:
            response = await client.get(path, params=params, headers=member.headers)
            assert response.status_code == 200, response.text
            return [item["kind"] for item in response.json()["items"]]

        assert await kinds(kind="transfer") == ["transfer"]
        assert await kinds(direction="credit") == ["deposit"]
        assert await kinds(direction="debit") == ["withdrawal", "transfer"]
        assert await kinds(**{"from": "2000-01-01T00:00:00Z"}) == [
            "withdrawal",
            "transfer",
            "deposit",
        ]
        assert await kinds(**{"to": "2000-01-01T00:00:00Z"}) == []

    async def test_a_forged_cursor_is_rejected(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        response = await client.get(
            f"/v1/accounts/{account['id']}/transactions",
            params={"cursor": "not-a-cursor"},
            headers=member.headers,
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_cursor"


class TestConcurrentDoubleSpend:
    async def test_twenty_withdrawals_against_funds_for_ten_let_exactly_ten_through(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=10_000)
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v1/accounts/{account['id']}/withdrawals",
                    json={"amount": 1_000},
                    headers=key_headers(member),
                )
                for _ in range(20)
            )
        )
        statuses = [response.status_code for response in responses]
        assert statuses.count(201) == 10
        assert statuses.count(409) == 10
        assert await balance_of(client, member, account) == 0
        assert len(await declined(client, member, account)) == 10
        await assert_ledger_verifies(app)
