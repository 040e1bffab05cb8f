"""Time order on each account: a clock that steps back (or a request that waited for the
lock) never stamps a posting or a hold before the account's last change, the daily
outgoing counter never moves back a day, and a statement lists the holds open at its
period's end and nothing placed after it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from banking.accounts.models import Account
from banking.ledger.models import Posting
from banking.ledger.verify import verify_ledger
from tests.cards_support import approved, capture, funded_card
from tests.factories import Member, deposit, make_member, withdraw


def _set_clock(app: FastAPI, moment: dt.datetime) -> None:
    app.state.clock = lambda: moment


async def _postings(app: FastAPI, account_id: str) -> list[tuple[int, dt.datetime]]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(Posting.id, Posting.created_at)
            .where(Posting.account_id == uuid.UUID(account_id))
            .order_by(Posting.id)
        )
        return [(row[0], row[1]) for row in rows]


async def _account_row(app: FastAPI, account_id: str) -> Any:
    async with app.state.db.sessionmaker() as session:
        return (
            await session.execute(
                select(Account.outgoing_on, Account.outgoing_minor).where(
                    Account.id == uuid.UUID(account_id)
                )
            )
        ).one()


async def _statement(
    client: httpx.AsyncClient, member: Member, account_id: str, month: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/accounts/{account_id}/statements/{month}", headers=member.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _verifies(app: FastAPI) -> None:
    async with app.state.db.sessionmaker() as session:
        report = await verify_ledger(session)
    assert report.ok, report.problems


class TestClockStepsBack:
    async def test_a_capture_stamped_behind_the_account_is_stamped_at_its_last_posting(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # Sessions are checked against real time: log in before the clock is moved.
        member = await make_member(client)
        late = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)
        _set_clock(app, late)
        account, card = await funded_card(client, member, balance_minor=1_000_00)
        held = await approved(client, card, 40_00)
        assert (await deposit(client, member, account["id"], 5_00)).status_code == 201
        # The clock steps back an hour (another host, an NTP step): nothing on the account
        # may be stamped before what is already there.
        _set_clock(app, late - dt.timedelta(hours=1))
        captured = await capture(client, held, 40_00)
        assert captured.status_code == 200, captured.text
        assert (await withdraw(client, member, account["id"], 1_00)).status_code == 201
        postings = await _postings(app, account["id"])
        times = [created_at for _, created_at in postings]
        assert times == sorted(times)
        assert times[-1] == late
        january = await _statement(client, member, account["id"], "2026-01")
        balance = await client.get(f"/v1/accounts/{account['id']}/balance", headers=member.headers)
        assert january["closing_balance"] == balance.json()["balance"] == 964_00
        await _verifies(app)


class TestDailyCounter:
    async def test_a_capture_with_a_clock_behind_midnight_does_not_move_the_day_back(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        after_midnight = dt.datetime(2026, 2, 1, 0, 1, tzinfo=dt.UTC)
        _set_clock(app, after_midnight)
        account, card = await funded_card(client, member, balance_minor=1_000_00)
        held = await approved(client, card, 3_00)
        _set_clock(app, after_midnight - dt.timedelta(minutes=2))
        captured = await capture(client, held, 3_00)
        assert captured.status_code == 200, captured.text
        outgoing_on, outgoing_minor = await _account_row(app, account["id"])
        # The day's spending is remembered: the counter stays on 1 February with the capture.
        assert (outgoing_on, outgoing_minor) == (dt.date(2026, 2, 1), 3_00)
        await _verifies(app)


class TestStatementHolds:
    async def test_a_closed_month_lists_the_holds_open_at_its_end_and_none_made_after(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _set_clock(app, dt.datetime(2025, 11, 10, 9, 0, tzinfo=dt.UTC))
        account, card = await funded_card(client, member, balance_minor=1_000_00)
        captured_in_november = await approved(client, card, 11_00)
        _set_clock(app, dt.datetime(2025, 11, 12, 9, 0, tzinfo=dt.UTC))
        assert (await capture(client, captured_in_november, 11_00)).status_code == 200
        _set_clock(app, dt.datetime(2025, 11, 28, 9, 0, tzinfo=dt.UTC))
        open_at_end = await approved(client, card, 22_00)
        _set_clock(app, dt.datetime(2025, 12, 2, 9, 0, tzinfo=dt.UTC))
        made_in_december = await approved(client, card, 33_00)

        november = await _statement(client, member, account["id"], "2025-11")
        assert [hold["id"] for hold in november["pending_holds"]] == [open_at_end]
        december = await _statement(client, member, account["id"], "2025-12")
        assert [hold["id"] for hold in december["pending_holds"]] == [
            open_at_end,
            made_in_december,
        ]
        # Captured in December: November still shows it open at its end, December does not.
        assert (await capture(client, open_at_end, 22_00)).status_code == 200
        november = await _statement(client, member, account["id"], "2025-11")
        assert [hold["id"] for hold in november["pending_holds"]] == [open_at_end]
        december = await _statement(client, member, account["id"], "2025-12")
        assert [hold["id"] for hold in december["pending_holds"]] == [made_in_december]
        await _verifies(app)
