"""`banking seed` through the services: deterministic, and the ledger verifies after it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from banking.accounts.models import Account
from banking.core.db import Database
from banking.identity.models import User
from banking.ledger.models import JournalEntry
from banking.ledger.verify import verify_ledger
from banking.seed import ADMIN_EMAIL, SUPPORT_EMAIL, apply, has_users, make_plan
from tests.conftest import make_settings
from tests.databases import DatabaseFactory
from tests.factories import PASSWORD

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
STAFF = ["Lantern-Quay-Harbour-31", "Lantern-Quay-Harbour-32"]


async def seed_into(url: str) -> tuple[dict[str, Any], Any]:
    db = Database(make_settings(url, db_pool_size=2))
    try:
        assert not await has_users(db)
        plan = make_plan(users=4, months=2, seed=42, now=NOW)
        steps: list[int] = []
        report = await apply(
            db, plan, member_password=PASSWORD, staff_passwords=STAFF, advance=steps.append
        )
        assert sum(steps) == len(plan.people) + len(plan.events)
        assert await has_users(db)
        async with db.sessionmaker() as session:
            verified = await verify_ledger(session)
            assert verified.ok, verified.problems
            return await snapshot(session), report
    finally:
        await db.dispose()


async def snapshot(session: Any) -> dict[str, Any]:
    """What must not depend on the run: people, accounts, balances and every entry."""
    users = {u.id: (u.email, u.role) for u in (await session.execute(select(User))).scalars()}
    accounts = {
        a.id: (users[a.owner_id][0], a.type, a.currency)
        for a in (await session.execute(select(Account).where(Account.owner_id.is_not(None))))
        .scalars()
        .all()
    }
    balances = sorted(
        (accounts[a.id], a.balance_minor, a.status)
        for a in (await session.execute(select(Account).where(Account.owner_id.is_not(None))))
        .scalars()
        .all()
    )
    entries = sorted(
        (
            e.created_at.astimezone(dt.UTC).isoformat(),
            e.kind,
            e.status,
            e.amount_minor,
            e.description,
            e.decline_reason,
            accounts.get(e.origin_account_id),
        )
        for e in (await session.execute(select(JournalEntry))).scalars().all()
    )
    return {"users": sorted(users.values()), "balances": balances, "entries": entries}


@pytest.fixture
def other_database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    """A second fresh database (a synchronous fixture: creating one runs its own loop)."""
    url = database_factory.new_url()
    yield url
    database_factory.drop(url)


class TestSeed:
    async def test_the_same_seed_gives_the_same_bank_and_the_ledger_verifies(
        self, database_url: str, other_database_url: str
    ) -> None:
        first, report = await seed_into(database_url)
        second, _ = await seed_into(other_database_url)
        assert first == second
        assert report.people == 4
        assert report.posted > 4 * 2 * 8
        roles = dict(first["users"])
        assert (roles[SUPPORT_EMAIL], roles[ADMIN_EMAIL]) == ("support", "admin")
        assert [c.email for c in report.staff] == [SUPPORT_EMAIL, ADMIN_EMAIL]
        # Activity is spread over the months, not all dated now.
        days = {entry[0][:10] for entry in first["entries"]}
        assert len(days) > 20
        assert min(days) < (NOW - dt.timedelta(days=28)).date().isoformat()


class TestDemoMember:
    async def test_the_demo_member_has_savings_a_card_and_pays_shops_by_card(
        self, database_url: str
    ) -> None:
        from banking.cards.models import Card

        snapshot_, report = await seed_into(database_url)
        member = report.member_email
        kinds = sorted(kind for (email, kind, _), _, _ in snapshot_["balances"] if email == member)
        assert kinds == ["checking", "savings"]
        db = Database(make_settings(database_url, db_pool_size=2))
        try:
            async with db.sessionmaker() as session:
                owner = (
                    await session.execute(select(User.id).where(User.email == member))
                ).scalar_one()
                cards = (await session.execute(select(Card))).scalars().all()
                assert [c.account_id for c in cards] == [
                    (
                        await session.execute(
                            select(Account.id).where(
                                Account.owner_id == owner, Account.type == "checking"
                            )
                        )
                    ).scalar_one()
                ]
        finally:
            await db.dispose()
        captures = [e for e in snapshot_["entries"] if e[1] == "card_capture"]
        assert captures, "the demo member's purchases are card payments"
        assert all(e[6] == (member, "checking", "USD") for e in captures)
        shops = {e[4].removeprefix("Card payment: ") for e in captures}
        assert shops & {"Green Basket", "FreshMart", "Corner Grocery", "Harvest Market",
                        "Daily Pantry"}  # fmt: skip
