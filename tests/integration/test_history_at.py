"""The balance at an instant, daily closing balances, and the history's filters and
counterparty names (GET /v1/accounts/{id}/balance?at=, /balance-history, /transactions)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking.ledger import history
from tests.cards_support import NETWORK, approved, capture, funded_card
from tests.factories import (
    Member,
    deposit,
    keyed,
    make_member,
    make_staff,
    open_account,
    withdraw,
)
from tests.history_shape import assert_history_shape

START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def _set_clock(app: FastAPI, moment: dt.datetime) -> None:
    app.state.clock = lambda: moment


async def _balance_at(
    client: httpx.AsyncClient, member: Member, account_id: str, at: dt.datetime | str
) -> httpx.Response:
    value = at if isinstance(at, str) else at.isoformat()
    return await client.get(
        f"/v1/accounts/{account_id}/balance", params={"at": value}, headers=member.headers
    )


async def _history(
    client: httpx.AsyncClient, member: Member, account_id: str, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/v1/accounts/{account_id}/transactions", params=params, headers=member.headers
    )


async def _transfer(
    client: httpx.AsyncClient,
    member: Member,
    source: str,
    target_number: str,
    amount: int,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        "/v1/transfers",
        json={
            "source_account_id": source,
            "target_account_number": target_number,
            "amount": amount,
            **body,
        },
        headers=keyed(member.headers),
    )


class TestBalanceAt:
    async def test_the_balance_and_what_was_held_at_each_instant(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _set_clock(app, START)
        account, card = await funded_card(client, member, balance_minor=100_00)
        _set_clock(app, START + dt.timedelta(hours=1))
        hold = await approved(client, card, 30_00)
        _set_clock(app, START + dt.timedelta(hours=2))
        assert (await capture(client, hold, 25_00)).status_code == 200
        _set_clock(app, START + dt.timedelta(hours=3))
        assert (await withdraw(client, member, account["id"], 10_00)).status_code == 201
        _set_clock(app, START + dt.timedelta(days=1))

        async def at(moment: dt.datetime) -> tuple[int, int, int]:
            response = await _balance_at(client, member, account["id"], moment)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["currency"] == "USD"
            assert dt.datetime.fromisoformat(body["at"]) == moment
            return body["balance"], body["held"], body["available_balance"]

        before_opening = START - dt.timedelta(days=30)
        assert await at(before_opening) == (0, 0, 0)
        assert await at(START) == (100_00, 0, 100_00)
        assert await at(START + dt.timedelta(minutes=90)) == (100_00, 30_00, 70_00)
        # The capture takes the money and ends the hold at the same instant.
        assert await at(START + dt.timedelta(hours=2)) == (75_00, 0, 75_00)
        assert await at(START + dt.timedelta(hours=2, microseconds=-1)) == (100_00, 30_00, 70_00)
        assert await at(START + dt.timedelta(hours=5)) == (65_00, 0, 65_00)
        # Any zone: the same instant written in another offset.
        paris = (START + dt.timedelta(minutes=90)).astimezone(dt.timezone(dt.timedelta(hours=1)))
        assert await at(paris) == (100_00, 30_00, 70_00)
        now = await client.get(f"/v1/accounts/{account['id']}/balance", headers=member.headers)
        assert now.json()["balance"] == 65_00

    async def test_a_hold_counts_until_it_lapses(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _set_clock(app, START)
        account, card = await funded_card(client, member, balance_minor=50_00)
        await approved(client, card, 20_00)
        days = app.state.db.settings.card_hold_days
        _set_clock(app, START + dt.timedelta(days=days + 1))
        expiry = START + dt.timedelta(days=days)
        before = await _balance_at(client, member, account["id"], expiry - dt.timedelta(seconds=1))
        after = await _balance_at(client, member, account["id"], expiry)
        assert before.json()["held"] == 20_00
        assert after.json()["held"] == 0
        assert after.json()["balance"] == 50_00

    async def test_bad_instants_are_refused(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        member = await make_member(client)
        account = await open_account(client, member, balance_minor=10_00)
        future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        response = await _balance_at(client, member, account["id"], future)
        assert response.status_code == 422
        assert response.json()["code"] == "at_in_future"
        naive = await _balance_at(client, member, account["id"], "2026-03-01T10:00:00")
        assert naive.status_code == 422
        assert naive.json()["code"] == "validation_error"
        assert "at" in naive.text
        garbage = await _balance_at(client, member, account["id"], "yesterday")
        assert garbage.status_code == 422
        # The first instants there are: a balance of 0, or out of range before year 1 UTC.
        first = await _balance_at(client, member, account["id"], "0001-01-01T00:00:00Z")
        assert (first.status_code, first.json()["balance"]) == (200, 0)
        early = await _balance_at(client, member, account["id"], "0001-01-01T00:00:00+05:00")
        assert early.status_code == 422
        assert early.json()["code"] == "at_out_of_range"

    async def test_only_the_owner_reads_it(self, client: httpx.AsyncClient) -> None:
        owner = await make_member(client)
        stranger = await make_member(client)
        account = await open_account(client, owner, balance_minor=10_00)
        moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        response = await _balance_at(client, stranger, account["id"], moment)
        assert response.status_code == 404
        anonymous = await client.get(
            f"/v1/accounts/{account['id']}/balance", params={"at": moment.isoformat()}
        )
        assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "settings_overrides", [{"bank_timezone": "America/New_York"}], indirect=True
)
class TestBalanceHistory:
    async def test_closing_balances_per_day_in_the_bank_time_zone(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        # 1 March 2026, 23:30 in New York is 2 March 04:30 UTC: it closes 1 March.
        _set_clock(app, dt.datetime(2026, 3, 2, 4, 30, tzinfo=dt.UTC))
        account = await open_account(client, member, balance_minor=10_00)
        _set_clock(app, dt.datetime(2026, 3, 2, 5, 30, tzinfo=dt.UTC))  # 2 March, 00:30
        assert (await deposit(client, member, account["id"], 5_00)).status_code == 201
        _set_clock(app, dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC))
        assert (await withdraw(client, member, account["id"], 3_00)).status_code == 201
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance-history",
            params={"from": "2026-02-28", "to": "2026-03-04"},
            headers=member.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["account_id"] == account["id"]
        assert body["currency"] == "USD"
        assert body["items"] == [
            {"date": "2026-02-28", "balance": 0},
            {"date": "2026-03-01", "balance": 10_00},
            {"date": "2026-03-02", "balance": 15_00},
            {"date": "2026-03-03", "balance": 15_00},
            {"date": "2026-03-04", "balance": 12_00},
        ]
        # Each point is the balance at the end of its day.
        end_of_2_march = dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC) - dt.timedelta(microseconds=1)
        point = await _balance_at(client, member, account["id"], end_of_2_march)
        assert point.json()["balance"] == 15_00

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"from": "2026-03-04", "to": "2026-03-01"}, "invalid_date_range"),
            ({"from": "2025-03-01", "to": "2026-03-02"}, "invalid_date_range"),
            ({"from": "2026-03-01", "to": "2026-03-05"}, "date_in_future"),
            ({"from": "2026-03-01", "to": "03/04/2026"}, "validation_error"),
            ({"from": "last week"}, "validation_error"),
            ({"from": "2026-03-05"}, "invalid_date_range"),  # after the default `to`, today
        ],
    )
    async def test_bad_ranges_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, params: dict[str, str], code: str
    ) -> None:
        member = await make_member(client)
        account = await open_account(client, member)
        _set_clock(app, dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC))
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance-history", params=params, headers=member.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code

    async def test_366_days_is_the_most(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        member = await make_member(client)
        _set_clock(app, dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC))
        account = await open_account(client, member, balance_minor=7_00)
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance-history",
            params={"from": "2025-03-04", "to": "2026-03-04"},
            headers=member.headers,
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 366
        assert items[0] == {"date": "2025-03-04", "balance": 0}
        assert items[-1] == {"date": "2026-03-04", "balance": 7_00}

    async def test_by_default_the_last_90_days_end_today(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _set_clock(app, dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC))
        account = await open_account(client, member, balance_minor=7_00)
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance-history", headers=member.headers
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 90
        assert items[0] == {"date": "2025-12-05", "balance": 0}
        assert items[-1] == {"date": "2026-03-04", "balance": 7_00}

    async def test_another_members_account_is_unknown(self, client: httpx.AsyncClient) -> None:
        owner = await make_member(client)
        stranger = await make_member(client)
        account = await open_account(client, owner)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        response = await client.get(
            f"/v1/accounts/{account['id']}/balance-history",
            params={"from": today, "to": today},
            headers=stranger.headers,
        )
        assert response.status_code == 404


class TestCounterpartyName:
    async def test_each_kind_names_its_counterparty(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        ada = await make_member(client)
        grace = await make_member(client, first_name="Grace", last_name="Hopper")
        account, card = await funded_card(client, ada, balance_minor=100_00)
        savings = await open_account(client, ada, type="savings")
        graces = await open_account(client, grace, balance_minor=50_00)
        assert (
            await _transfer(client, grace, graces["id"], account["number"], 20_00)
        ).status_code == 201
        assert (
            await _transfer(client, ada, account["id"], graces["number"], 5_00)
        ).status_code == 201
        assert (
            await _transfer(client, ada, account["id"], savings["number"], 1_00)
        ).status_code == 201
        hold = await approved(client, card, 12_00)
        assert (await capture(client, hold, 12_00)).status_code == 200
        refund = await client.post(
            f"/v1/card-authorizations/{hold}/refund",
            json={"amount": 2_00},
            headers={**NETWORK, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert refund.status_code in (200, 201), refund.text
        assert (await withdraw(client, ada, account["id"], 1_00)).status_code == 201
        # Declined: more than is there.
        declined = await _transfer(client, ada, account["id"], graces["number"], 10_000_00)
        assert declined.status_code in (409, 422)

        response = await _history(client, ada, account["id"])
        assert response.status_code == 200, response.text
        assert_history_shape(response)
        names = [
            (item["kind"], item["amount"], item["counterparty_name"])
            for item in response.json()["items"]
        ]
        assert names == [
            ("withdrawal", -1_00, None),
            ("card_refund", 2_00, "Corner Bookshop"),
            ("card_capture", -12_00, "Corner Bookshop"),
            # Both accounts are Ada's.
            ("transfer", -1_00, "Ada Lovelace"),
            # Ada paid Grace: the name as the payee lookup shows it.
            ("transfer", -5_00, "G*** H***"),
            # Grace paid Ada: the recipient sees the sender's name.
            ("transfer", 20_00, "Grace Hopper"),
            ("deposit", 100_00, None),
        ]
        graces_view = await _history(client, grace, graces["id"])
        assert [item["counterparty_name"] for item in graces_view.json()["items"]] == [
            "Ada Lovelace",
            "A*** L***",
            None,
        ]
        refused = await _history(client, ada, account["id"], status="declined")
        assert_history_shape(refused)
        assert declined.json()["code"] == "insufficient_funds"
        assert [item["counterparty_name"] for item in refused.json()["items"]] == ["G*** H***"]
        # The declined list searches the same way: the digits shown, never the masked name.
        last_four = graces["number"][-4:]
        found = await _history(client, ada, account["id"], status="declined", q=last_four)
        assert [item["amount"] for item in found.json()["items"]] == [-10_000_00]
        hidden = await _history(client, ada, account["id"], status="declined", q="hopper")
        assert hidden.json()["items"] == []
        bounded = await _history(client, ada, account["id"], status="declined", max_amount=9_999_99)
        assert bounded.json()["items"] == []


class TestFilters:
    async def _setup(
        self, client: httpx.AsyncClient
    ) -> tuple[Member, dict[str, Any], dict[str, Any]]:
        ada = await make_member(client)
        grace = await make_member(client, first_name="Grace", last_name="Hopper")
        account, card = await funded_card(client, ada, balance_minor=1_000_00)
        graces = await open_account(client, grace, balance_minor=500_00)
        for amount, description in [
            (10_00, "Rent March"),
            (20_00, "Dinner 50% off"),
            (30_00, "rent april"),
        ]:
            response = await _transfer(
                client, grace, graces["id"], account["number"], amount, description=description
            )
            assert response.status_code == 201, response.text
        assert (
            await _transfer(client, ada, account["id"], graces["number"], 7_00, description="Books")
        ).status_code == 201
        hold = await approved(client, card, 45_00)
        assert (await capture(client, hold, 45_00)).status_code == 200
        for amount in (1_00, 2_00, 3_00):
            assert (
                await deposit(client, ada, account["id"], amount, description="Cash")
            ).status_code == 201
        return ada, account, graces

    async def test_amount_range_text_and_counterparty(self, client: httpx.AsyncClient) -> None:
        ada, account, graces = await self._setup(client)

        async def amounts(**params: Any) -> list[int]:
            response = await _history(client, ada, account["id"], **params)
            assert response.status_code == 200, response.text
            return [item["amount"] for item in response.json()["items"]]

        assert await amounts(min_amount=7_00, max_amount=30_00) == [7_00 * -1, 30_00, 20_00, 10_00]
        assert await amounts(min_amount=2_00, max_amount=2_00) == [2_00]
        assert await amounts(min_amount=100_000_00) == []
        # Case-insensitive, in the description; LIKE's wildcards are plain characters.
        assert await amounts(q="RENT") == [30_00, 10_00]
        assert await amounts(q="50%") == [20_00]
        assert await amounts(q="r_nt") == []
        # The sender's full name (shown to Ada in full) and the merchant.
        assert await amounts(q="hopper") == [30_00, 20_00, 10_00]
        assert await amounts(q="bookshop") == [-45_00]
        # The last four digits of the counterparty's number, as the list shows them.
        assert await amounts(q=graces["number"][-4:]) == [-7_00, 30_00, 20_00, 10_00]
        assert await amounts(q=graces["number"][:6]) == []
        assert await amounts(counterparty=graces["number"]) == [-7_00, 30_00, 20_00, 10_00]
        assert await amounts(
            counterparty=graces["number"], direction="credit", min_amount=15_00
        ) == [
            30_00,
            20_00,
        ]
        assert await amounts(q="rent", min_amount=15_00) == [30_00]

    async def test_a_paid_name_is_not_searchable_in_full(self, client: httpx.AsyncClient) -> None:
        ada = await make_member(client)
        grace = await make_member(client, first_name="Grace", last_name="Hopper")
        account = await open_account(client, ada, balance_minor=100_00)
        graces = await open_account(client, grace)
        assert (
            await _transfer(client, ada, account["id"], graces["number"], 5_00)
        ).status_code == 201
        # Ada sees "G*** H***": searching the hidden name must not confirm it.
        response = await _history(client, ada, account["id"], q="hopper")
        assert response.json()["items"] == []

    async def test_filters_combine_with_pages(self, client: httpx.AsyncClient) -> None:
        ada, account, graces = await self._setup(client)
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"counterparty": graces["number"], "limit": 1}
            if cursor:
                params["cursor"] = cursor
            response = await _history(client, ada, account["id"], **params)
            assert response.status_code == 200, response.text
            body = response.json()
            seen += [item["amount"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [-7_00, 30_00, 20_00, 10_00]
        assert pages == 4
        # A cursor is a position: with other filters it lists what they find below it.
        first = await _history(client, ada, account["id"], q="rent", limit=1)
        assert [item["amount"] for item in first.json()["items"]] == [30_00]
        other = await _history(
            client, ada, account["id"], cursor=first.json()["next_cursor"], min_amount=15_00
        )
        assert [item["amount"] for item in other.json()["items"]] == [20_00, 1_000_00]

    async def test_a_search_reads_one_window_per_page_and_goes_on_below_it(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(history, "SEARCH_WINDOW", 3)
        ada = await make_member(client)
        account = await open_account(client, ada)
        assert (
            await deposit(client, ada, account["id"], 4_00, description="Needle")
        ).status_code == 201
        for amount in range(1, 8):
            assert (await deposit(client, ada, account["id"], amount)).status_code == 201
        pages: list[list[int]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"q": "needle", "limit": 5}
            if cursor:
                params["cursor"] = cursor
            body = (await _history(client, ada, account["id"], **params)).json()
            pages.append([item["amount"] for item in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        # 8 postings, 3 per window: short (here empty) pages carry a cursor to go on.
        assert pages == [[], [], [4_00]]
        # Amount bounds too; without them, plain pages are not windowed.
        bounded = (await _history(client, ada, account["id"], min_amount=7, limit=5)).json()
        assert [item["amount"] for item in bounded["items"]] == [7]
        assert bounded["next_cursor"] is not None
        plain = (await _history(client, ada, account["id"], limit=5)).json()
        assert [item["amount"] for item in plain["items"]] == [7, 6, 5, 4, 3]

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"min_amount": 5, "max_amount": 4}, "invalid_amount_range"),
            ({"min_amount": -1}, "validation_error"),
            ({"max_amount": "ten"}, "validation_error"),
            ({"q": ""}, "validation_error"),
            ({"q": "x" * 101}, "validation_error"),
            ({"counterparty": "123"}, "validation_error"),
            ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ],
    )
    async def test_bad_filters_are_refused(
        self, client: httpx.AsyncClient, params: dict[str, Any], code: str
    ) -> None:
        ada = await make_member(client)
        account = await open_account(client, ada)
        response = await _history(client, ada, account["id"], **params)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code


@pytest.mark.parametrize("settings_overrides", [{"approval_threshold_minor": 50_00}], indirect=True)
class TestApprovalHolds:
    async def test_a_transfer_waiting_for_approval_is_held_until_decided(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        payer = await make_member(client)
        payee = await make_member(client, first_name="Grace", last_name="Hopper")
        checker = await make_staff(client, app, "admin")
        _set_clock(app, START)
        source = await open_account(client, payer, balance_minor=200_00)
        target = await open_account(client, payee)
        _set_clock(app, START + dt.timedelta(hours=1))
        waiting = await _transfer(client, payer, source["id"], target["number"], 120_00)
        assert waiting.status_code == 202, waiting.text
        _set_clock(app, START + dt.timedelta(hours=2))
        rejected = await client.post(
            f"/v1/approvals/{waiting.json()['id']}/reject",
            json={"reason": "not today"},
            headers=checker.headers,
        )
        assert rejected.status_code == 200, rejected.text
        _set_clock(app, START + dt.timedelta(hours=3))

        async def at(moment: dt.datetime) -> tuple[int, int]:
            body = (await _balance_at(client, payer, source["id"], moment)).json()
            return body["balance"], body["held"]

        assert await at(START + dt.timedelta(minutes=30)) == (200_00, 0)
        assert await at(START + dt.timedelta(minutes=90)) == (200_00, 120_00)
        assert await at(START + dt.timedelta(minutes=150)) == (200_00, 0)
