"""Savings interest: daily accrual on end-of-day balances (actual/365), monthly posting
from the interest-expense account with the rounding remainder carried, idempotent runs."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from fractions import Fraction

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from banking.interest import job
from banking.interest import service as interest
from banking.interest.models import InterestAccrual, InterestPosting
from banking.ledger.models import JournalEntry
from tests.factories import deposit, make_member, make_staff, open_account, withdraw
from tests.integration.test_ledger_verify import run_verify
from tests.server import server_env

UTC = dt.UTC


def at(app: FastAPI, moment: dt.datetime) -> None:
    app.state.clock = lambda: moment


async def _interest_entries(app: FastAPI, account_id: str) -> list[tuple[str, int]]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(
            select(JournalEntry.description, JournalEntry.amount_minor)
            .where(
                JournalEntry.kind == "interest",
                JournalEntry.target_account_id == uuid.UUID(account_id),
                JournalEntry.status == "posted",
            )
            .order_by(JournalEntry.created_at)
        )
        return [(row[0], row[1]) for row in rows]


def _reference(
    events: list[tuple[dt.datetime, int]],
    rates: list[tuple[dt.date, int]],
    opened_on: dt.date,
    months: list[tuple[int, int]],
) -> dict[str, int]:
    """Interest per month computed independently: exact fractions of a cent per day on the
    end-of-day balance, posted at 00:30 on the next month's first day, rounded half-even
    (Python's `round` of a Fraction), remainder carried."""
    balance_changes = sorted(events)
    posted: dict[str, int] = {}
    carry = Fraction(0)
    for year, month in months:
        first = dt.date(year, month, 1)
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        total = carry
        day = max(first, opened_on)
        while day < following:
            end = dt.datetime(day.year, day.month, day.day, tzinfo=UTC) + dt.timedelta(days=1)
            balance = sum(amount for moment, amount in balance_changes if moment < end)
            rate = 0
            for effective_on, bps in rates:
                if effective_on <= day:
                    rate = bps
            total += Fraction(balance * rate, 10_000 * 365)
            day += dt.timedelta(days=1)
        amount = round(total)
        carry = total - amount
        label = f"{year:04d}-{month:02d}"
        posted[label] = amount
        if amount:
            # The interest is credited when it is posted: it earns interest from then on.
            balance_changes.append(
                (dt.datetime(following.year, following.month, 1, 0, 30, tzinfo=UTC), amount)
            )
    return posted


class TestAccrualAndPosting:
    async def test_a_leap_year_of_daily_accruals_matches_a_reference_to_the_cent(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        admin = await make_staff(client, app, "admin")
        # Opened mid-month, in a leap year.
        at(app, dt.datetime(2024, 1, 10, 15, 0, tzinfo=UTC))
        account = await open_account(client, member, type="savings")
        events: list[tuple[dt.datetime, int]] = []
        rates = [(dt.date(2024, 1, 10), app.state.settings.savings_rate_bps)]
        plan: list[tuple[dt.datetime, str, int]] = [
            (dt.datetime(2024, 1, 10, 16, 0, tzinfo=UTC), "deposit", 1_234_567),
            (dt.datetime(2024, 2, 29, 23, 59, tzinfo=UTC), "deposit", 50_001),
            (dt.datetime(2024, 3, 15, 8, 0, tzinfo=UTC), "rate", 275),
            (dt.datetime(2024, 3, 31, 12, 0, tzinfo=UTC), "withdraw", 333_333),
            (dt.datetime(2024, 6, 1, 0, 0, tzinfo=UTC), "deposit", 7),
            (dt.datetime(2024, 7, 20, 9, 0, tzinfo=UTC), "rate", 0),
            (dt.datetime(2024, 8, 2, 9, 0, tzinfo=UTC), "rate", 333),
            (dt.datetime(2024, 11, 30, 23, 59, 59, tzinfo=UTC), "deposit", 999_999),
        ]
        months = [(2024, month) for month in range(1, 13)]
        step = 0
        for year, month in months:
            following = dt.date(year + month // 12, month % 12 + 1, 1)
            while step < len(plan) and plan[step][0].date() < following:
                moment, action, value = plan[step]
                at(app, moment)
                if action == "deposit":
                    assert (await deposit(client, member, account["id"], value)).status_code == 201
                    events.append((moment, value))
                elif action == "withdraw":
                    assert (await withdraw(client, member, account["id"], value)).status_code == 201
                    events.append((moment, -value))
                else:
                    changed = await client.put(
                        f"/v1/admin/accounts/{account['id']}/interest-rate",
                        json={"rate_bps": value, "reason": "product change"},
                        headers=admin.headers,
                    )
                    assert changed.status_code == 200, changed.text
                    rates.append((moment.date(), value))
                step += 1
            at(app, dt.datetime(following.year, following.month, 1, 0, 30, tzinfo=UTC))
            report = await interest.post_month(app.state.db, month=f"{year:04d}-{month:02d}")
            assert report.declined == 0
        expected = _reference(events, rates, dt.date(2024, 1, 10), months)
        entries = await _interest_entries(app, account["id"])
        assert entries == [
            (f"Interest {label}", amount) for label, amount in expected.items() if amount
        ]
        # A year to the cent, nothing lost to rounding.
        assert sum(amount for _, amount in entries) == sum(expected.values())
        async with app.state.db.sessionmaker() as session:
            days = await session.scalar(
                select(func.count()).where(InterestAccrual.account_id == uuid.UUID(account["id"]))
            )
        assert days == 366 - 9  # from 10 January to 31 December 2024
        # The statement shows the interest line.
        statement = (
            await client.get(
                f"/v1/accounts/{account['id']}/statements/2024-12", headers=member.headers
            )
        ).json()
        lines = [line for line in statement["lines"] if line["kind"] == "interest"]
        assert [line["amount"] for line in lines] == [expected["2024-11"]]
        assert lines[0]["description"] == "Interest 2024-11"
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    async def test_reruns_never_accrue_or_post_twice(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        at(app, dt.datetime(2025, 3, 5, 12, 0, tzinfo=UTC))
        account = await open_account(client, member, type="savings", balance_minor=10_000_000)
        at(app, dt.datetime(2025, 4, 2, 10, 0, tzinfo=UTC))
        first = await interest.accrue(app.state.db, through=dt.date(2025, 3, 31))
        again = await interest.accrue(app.state.db, through=dt.date(2025, 3, 31))
        assert (first.days, again.days) == (27, 0)
        posted = await interest.post_month(app.state.db, month="2025-03")
        repeat = await interest.post_month(app.state.db, month="2025-03")
        assert (posted.accounts, repeat.accounts, repeat.already_posted) == (1, 0, 1)
        # The in-process job's step is the same idempotent work.
        assert await job.run_once(app.state.db)
        entries = await _interest_entries(app, account["id"])
        # 10,000,000 x 1.50 % x 27 / 365 = 11,095.89 → 11,096.
        assert entries == [("Interest 2025-03", 11_096)]
        async with app.state.db.sessionmaker() as session:
            carried = await session.scalar(select(InterestPosting.carried_out_micro))
        # 27 days of 410,958,904 micro-units (half-even of 1.5 x 10^11 / 365) less the
        # 11,096 cents posted: the remainder, carried to April.
        assert carried == 27 * 410_958_904 - 11_096 * 1_000_000
        with pytest.raises(interest.PeriodNotOver):
            await interest.accrue(app.state.db, through=dt.date(2025, 4, 2))
        with pytest.raises(interest.PeriodNotOver):
            await interest.post_month(app.state.db, month="2025-04")
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # A tampered monthly row is named by verify.
        from banking.core.db import write_transaction

        async with app.state.db.sessionmaker() as session, write_transaction(session):
            await session.execute(update(InterestPosting).values(posted_minor=11_097))
        failed = run_verify(database_url)
        assert failed.returncode == 1
        assert "interest_posting" in failed.stderr

    async def test_the_commands_accrue_and_post_once(
        self, client: httpx.AsyncClient, app: FastAPI, database_url: str
    ) -> None:
        member = await make_member(client)
        at(app, dt.datetime(2025, 1, 31, 12, 0, tzinfo=UTC))
        account = await open_account(client, member, type="savings", balance_minor=1_000_000)

        def banking(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "banking.cli", "interest", *args],
                env=server_env(database_url),
                capture_output=True,
                text=True,
                timeout=120,
            )

        accrued = banking("accrue", "--through", "2025-02-28")
        assert accrued.returncode == 0, accrued.stderr
        assert "accrued 29 day(s) on 1 account(s)" in accrued.stdout
        posted = banking("post", "--month", "2025-02")
        assert posted.returncode == 0, posted.stderr
        assert "posted to 1 account(s)" in posted.stdout
        again = banking("post", "--month", "2025-02")
        assert "posted to 0 account(s)" in again.stdout
        assert "1 already posted" in again.stdout
        # 1,000,000 x 1.50 % x 28 / 365 = 1,150.68 → 1,151.
        assert await _interest_entries(app, account["id"]) == [("Interest 2025-02", 1_151)]
        verified = run_verify(database_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr


class TestRates:
    async def test_members_read_admins_set_and_history_is_kept(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        other = await make_member(client)
        admin = await make_staff(client, app, "admin")
        support = await make_staff(client, app, "support")
        savings = await open_account(client, member, type="savings")
        checking = await open_account(client, member)
        url = f"/v1/accounts/{savings['id']}/interest-rate"
        admin_url = f"/v1/admin/accounts/{savings['id']}/interest-rate"
        read = await client.get(url, headers=member.headers)
        assert read.status_code == 200, read.text
        assert read.json()["rate_bps"] == read.json()["default_rate_bps"] == 150
        assert read.json()["history"] == []
        assert (await client.get(url, headers=other.headers)).status_code == 404
        today = app.state.clock().date()
        later = today + dt.timedelta(days=10)
        for body in ({"rate_bps": 200}, {"rate_bps": 300, "effective_on": later.isoformat()}):
            changed = await client.put(admin_url, json=body, headers=admin.headers)
            assert changed.status_code == 200, changed.text
        view = (await client.get(admin_url, headers=support.headers)).json()
        assert view["rate_bps"] == 200
        assert [(c["rate_bps"], c["effective_on"]) for c in view["history"]] == [
            (200, today.isoformat()),
            (300, later.isoformat()),
        ]
        past = await client.put(
            admin_url,
            json={"rate_bps": 1, "effective_on": (today - dt.timedelta(days=1)).isoformat()},
            headers=admin.headers,
        )
        assert past.status_code == 422
        assert past.json()["code"] == "rate_in_past"
        wrong = await client.put(
            f"/v1/admin/accounts/{checking['id']}/interest-rate",
            json={"rate_bps": 1},
            headers=admin.headers,
        )
        assert wrong.status_code == 422
        assert wrong.json()["code"] == "not_savings"
        for who in (support, member):
            refused = await client.put(admin_url, json={"rate_bps": 1}, headers=who.headers)
            assert refused.status_code == 403
        for bad in (-1, 10_001, "2", 1.5):
            invalid = await client.put(admin_url, json={"rate_bps": bad}, headers=admin.headers)
            assert invalid.status_code == 422, bad
