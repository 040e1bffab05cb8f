"""How a transfer names its accounts: the source and the target are read in one statement
with the same answers as reading them one by one (the source's error first)."""

from __future__ import annotations

import uuid

import httpx

from tests.factories import make_member, open_account
from tests.integration.test_payments import transfer


class TestTransferTargets:
    async def test_unknown_or_foreign_accounts_are_404_with_the_source_checked_first(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=1_000)
        bobs = await open_account(client, bob)
        unknown_number = "0" * 12

        by_number = await transfer(client, alice, source, 100, number=unknown_number)
        assert by_number.status_code == 404
        assert by_number.json()["detail"] == "No account has this number."

        # Another member's account by id is as unknown as a random id.
        for target in (bobs, {"id": str(uuid.uuid4())}):
            by_id = await transfer(client, alice, source, 100, target=target)
            assert by_id.status_code == 404
            assert by_id.json()["detail"] == "No such account."

        # A source that is not the caller's fails first, whatever the target.
        for target_number in (unknown_number, bobs["number"]):
            foreign = await transfer(client, alice, bobs, 100, number=target_number)
            assert foreign.status_code == 404
            assert foreign.json()["detail"] == "No such account."
        foreign = await transfer(client, alice, bobs, 100, target=source)
        assert foreign.status_code == 404
        assert foreign.json()["detail"] == "No such account."

    async def test_the_source_named_by_its_own_number_is_the_same_account(
        self, client: httpx.AsyncClient
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=1_000)
        response = await transfer(client, member, account, 100, number=account["number"])
        assert response.status_code == 422
        assert response.json()["code"] == "same_account"

    async def test_by_number_reaches_another_member_and_by_id_ones_own(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        checking = await open_account(client, alice, balance_minor=1_000)
        savings = await open_account(client, alice, type="savings")
        bobs = await open_account(client, bob)
        assert (await transfer(client, alice, checking, 100, target=savings)).status_code == 201
        assert (await transfer(client, alice, checking, 100, number=savings["number"])).json()[
            "target_account_id"
        ] == savings["id"]
        other = await transfer(client, alice, checking, 100, number=bobs["number"])
        assert other.status_code == 201
        assert other.json()["target_account_id"] is None
