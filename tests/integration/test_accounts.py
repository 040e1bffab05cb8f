from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking.accounts import numbers
from banking.core.db import utcnow
from tests.cards_support import approved, funded_card
from tests.factories import Member, keyed, make_member, open_account


class TestOpeningAccounts:
    async def test_a_new_account_has_a_valid_number_and_zero_balance(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        response = await client.post(
            "/v1/accounts", json={"type": "savings", "currency": "EUR"}, headers=member.headers
        )
        assert response.status_code == 201
        body = response.json()
        assert numbers.is_valid(body["number"])
        assert body["type"] == "savings"
        assert body["currency"] == "EUR"
        assert body["status"] == "active"
        assert body["balance"] == body["available_balance"] == 0

    async def test_currency_defaults_to_usd(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        assert account["currency"] == "USD"

    @pytest.mark.parametrize(
        "body",
        [
            {"type": "brokerage"},
            {"type": "checking", "currency": "XXX"},
            {"type": "checking", "currency": "usd"},
            {"type": "checking", "balance": 100},
        ],
    )
    async def test_invalid_account_requests_are_rejected(
        self, client: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        member = await make_member(client)
        response = await client.post("/v1/accounts", json=body, headers=member.headers)
        assert response.status_code == 422

    async def test_listing_shows_only_the_callers_accounts(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        mine = await open_account(client, alice)
        await open_account(client, bob)
        response = await client.get("/v1/accounts", headers=alice.headers)
        assert response.status_code == 200
        assert [item["id"] for item in response.json()["items"]] == [mine["id"]]
        assert response.json()["next_cursor"] is None


class TestAccountNumbers:
    def test_generated_numbers_carry_a_luhn_check_digit(self) -> None:
        for _ in range(200):
            number = numbers.generate()
            assert len(number) == 12
            assert number[0] != "0"
            assert numbers.is_valid(number)
            wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
            assert not numbers.is_valid(wrong)

    def test_masking_keeps_only_the_last_four_digits(self) -> None:
        assert numbers.mask("123456789012") == "********9012"


class TestOwnership:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/v1/accounts/{id}", None),
            ("PATCH", "/v1/accounts/{id}", {"nickname": "mine now"}),
            ("POST", "/v1/accounts/{id}/close", None),
            ("GET", "/v1/accounts/{id}/balance", None),
            ("GET", "/v1/accounts/{id}/transactions", None),
            ("POST", "/v1/accounts/{id}/deposits", {"amount": 100}),
            ("POST", "/v1/accounts/{id}/withdrawals", {"amount": 100}),
        ],
    )
    async def test_another_members_account_is_not_found(
        self, client: httpx.AsyncClient, method: str, path: str, body: dict[str, object] | None
    ) -> None:
        owner, stranger = await make_member(client), await make_member(client)
        account = await open_account(client, owner, balance_minor=1_000)
        for account_id in (account["id"], str(uuid.uuid4())):
            response = await client.request(
                method, path.format(id=account_id), json=body, headers=keyed(stranger.headers)
            )
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "not_found"
        balance = await client.get(f"/v1/accounts/{account['id']}/balance", headers=owner.headers)
        assert balance.json()["balance"] == 1_000

    async def test_a_transfer_from_another_members_account_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        owner, thief = await make_member(client), await make_member(client)
        victim = await open_account(client, owner, balance_minor=5_000)
        loot = await open_account(client, thief)

        async def state(account: dict[str, Any], member: Member) -> tuple[Any, Any]:
            balance = await client.get(
                f"/v1/accounts/{account['id']}/balance", headers=member.headers
            )
            history = await client.get(
                f"/v1/accounts/{account['id']}/transactions", headers=member.headers
            )
            assert balance.status_code == history.status_code == 200, balance.text
            return balance.json(), history.json()["items"]

        victim_before, loot_before = await state(victim, owner), await state(loot, thief)
        assert victim_before[0]["balance"] == 5_000
        assert len(victim_before[1]) == 1
        response = await client.post(
            "/v1/transfers",
            json={"source_account_id": victim["id"], "target_account_id": loot["id"], "amount": 1},
            headers={**thief.headers, "Idempotency-Key": "steal"},
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
        # Nothing moved: neither account's balance nor its history changed.
        assert await state(victim, owner) == victim_before
        assert await state(loot, thief) == loot_before

    async def test_a_transfer_to_another_members_account_by_id_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=5_000)
        target = await open_account(client, bob)
        response = await client.post(
            "/v1/transfers",
            json={
                "source_account_id": source["id"],
                "target_account_id": target["id"],
                "amount": 1,
            },
            headers={**alice.headers, "Idempotency-Key": "by-id"},
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"
        # Nothing moved: the target is still empty and the source still holds its money.
        for member, account, expected in ((alice, source, 5_000), (bob, target, 0)):
            balance = await client.get(
                f"/v1/accounts/{account['id']}/balance", headers=member.headers
            )
            assert balance.json()["balance"] == expected
        history = await client.get(f"/v1/accounts/{target['id']}/transactions", headers=bob.headers)
        assert history.json()["items"] == []

    async def test_requests_without_a_token_are_unauthorized(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await client.get("/v1/accounts")).status_code == 401
        assert (await client.get("/v1/balances")).status_code == 401


class TestRenamingAndClosing:
    async def test_the_nickname_can_be_set_and_removed(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        path = f"/v1/accounts/{account['id']}"
        response = await client.patch(path, json={"nickname": "Rainy day"}, headers=member.headers)
        assert response.status_code == 200
        assert response.json()["nickname"] == "Rainy day"
        response = await client.patch(path, json={"nickname": None}, headers=member.headers)
        assert response.json()["nickname"] is None

    async def test_only_the_nickname_can_be_changed(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        response = await client.patch(
            f"/v1/accounts/{account['id']}", json={"status": "closed"}, headers=member.headers
        )
        assert response.status_code == 422

    async def test_an_account_with_money_cannot_be_closed(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1)
        response = await client.post(f"/v1/accounts/{account['id']}/close", headers=member.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "account_not_empty"

    async def test_an_empty_account_closes_for_good(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=300)
        withdraw = await client.post(
            f"/v1/accounts/{account['id']}/withdrawals",
            json={"amount": 300},
            headers=keyed(member.headers),
        )
        assert withdraw.status_code == 201
        response = await client.post(f"/v1/accounts/{account['id']}/close", headers=member.headers)
        assert response.status_code == 200
        assert response.json()["status"] == "closed"
        assert response.json()["closed_at"] is not None
        again = await client.post(f"/v1/accounts/{account['id']}/close", headers=member.headers)
        assert again.status_code == 409
        deposit = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": 1},
            headers=keyed(member.headers),
        )
        assert deposit.status_code == 409
        assert deposit.json()["code"] == "account_closed"


class TestLookup:
    async def test_lookup_shows_a_masked_name_and_the_currency(
        self, client: httpx.AsyncClient
    ) -> None:
        payee = await make_member(client, first_name="Grace", last_name="Hopper")
        sender = await make_member(client)
        account = await open_account(client, payee, currency="GBP")
        response = await client.get(
            "/v1/accounts/lookup", params={"number": account["number"]}, headers=sender.headers
        )
        assert response.status_code == 200
        assert response.json() == {
            "number": account["number"],
            "currency": "GBP",
            "holder_name": "G*** H***",
        }

    async def test_a_number_with_a_wrong_check_digit_is_invalid(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        wrong = account["number"][:-1] + str((int(account["number"][-1]) + 1) % 10)
        response = await client.get(
            "/v1/accounts/lookup", params={"number": wrong}, headers=member.headers
        )
        assert response.status_code == 422

    async def test_an_unknown_number_is_not_found(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        payload = "12345678901"
        number = payload + numbers.luhn_check_digit(payload)
        response = await client.get(
            "/v1/accounts/lookup", params={"number": number}, headers=member.headers
        )
        assert response.status_code == 404


class TestBalances:
    async def test_balance_with_verify_recomputes_from_postings(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=12_345)
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance?verify=true", headers=member.headers
        )
        assert response.json() == {
            "account_id": account["id"],
            "currency": "USD",
            "balance": 12_345,
            "available_balance": 12_345,
            "held": 0,
            "computed_balance": 12_345,
            "last_balance_after": 12_345,
            "consistent": True,
            "at": None,
        }

    async def test_all_balances_of_a_member_without_accounts_is_an_empty_list(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        response = await client.get("/v1/balances", headers=member.headers)
        assert response.status_code == 200
        assert response.json()["items"] == []

    async def test_all_balances_need_a_live_session(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        await open_account(client, member, balance_minor=100)
        assert (await client.post("/v1/auth/logout", headers=member.headers)).status_code == 204
        response = await client.get("/v1/balances", headers=member.headers)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"

    async def test_all_balances_release_lapsed_card_holds_first(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        account, card = await funded_card(client, member)
        start = utcnow()
        app.state.clock = lambda: start
        await approved(client, card, 30_00)
        held = (await client.get("/v1/balances", headers=member.headers)).json()["items"]
        assert [(item["balance"], item["held"]) for item in held] == [(100_00, 30_00)]
        later = start + dt.timedelta(days=7)
        app.state.clock = lambda: later
        response = await client.get("/v1/balances", headers=member.headers)
        assert [
            (item["account_id"], item["available_balance"], item["held"])
            for item in (response.json()["items"])
        ] == [(account["id"], 100_00, 0)]

    async def test_all_balances_are_listed_together(self, client: httpx.AsyncClient) -> None:
        member = await make_member(client)
        first = await open_account(client, member, balance_minor=100)
        second = await open_account(client, member, currency="EUR", balance_minor=250)
        response = await client.get("/v1/balances", headers=member.headers)
        assert response.status_code == 200
        items = {item["account_id"]: item for item in response.json()["items"]}
        assert items[first["id"]]["balance"] == 100
        assert items[second["id"]]["balance"] == 250
        assert items[second["id"]]["currency"] == "EUR"
        assert response.json()["next_cursor"] is None
