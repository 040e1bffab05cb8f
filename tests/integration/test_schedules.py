"""Scheduled and standing transfers: the API, and runs driven by `run_due` at chosen times."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from banking.core.db import Database, utcnow
from banking.ledger.models import EntryStatus, JournalEntry
from banking.ledger.verify import verify_ledger
from banking.ledger.writer import close_writer
from banking.schedules import service as schedules
from banking.schedules.calendar import occurrence_at
from banking.schedules.models import Frequency, ScheduledTransferRun
from tests.factories import Member, make_member, open_account
from tests.integration.test_payments import assert_ledger_verifies, balance_of

RETRIES = 2
RETRY_S = 600


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {
        # The tests drive the runs themselves.
        "scheduler_interval_s": 0,
        "schedule_retries": RETRIES,
        "schedule_retry_interval_s": RETRY_S,
        "new_payee_cooldown_s": 0,
        **getattr(request, "param", {}),
    }


def rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def schedule(
    client: httpx.AsyncClient,
    member: Member,
    source: dict[str, Any],
    *,
    first_run_at: dt.datetime,
    frequency: str = "monthly",
    amount: int = 10_00,
    target: dict[str, Any] | None = None,
    **body: Any,
) -> httpx.Response:
    payload: dict[str, Any] = {
        "source_account_id": source["id"],
        "amount": amount,
        "first_run_at": rfc3339(first_run_at),
        "frequency": frequency,
        **body,
    }
    if target is not None:
        payload["target_account_number"] = target["number"]
    return await client.post("/v1/scheduled-transfers", json=payload, headers=member.headers)


async def detail(client: httpx.AsyncClient, member: Member, schedule_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/scheduled-transfers/{schedule_id}", headers=member.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def posted_entries(app: FastAPI, schedule_id: str) -> int:
    async with app.state.db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(
                JournalEntry.idempotency_key.like(f"schedule:{schedule_id}:%"),
                JournalEntry.status == EntryStatus.posted.value,
            )
        )
    return int(count or 0)


class TestCreating:
    async def test_a_monthly_standing_order_shows_its_next_run(
        self, client: httpx.AsyncClient
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(days=1)
        response = await schedule(client, alice, source, first_run_at=first, target=bobs, count=3)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "active"
        assert parse(body["next_run_at"]) == first.replace(microsecond=first.microsecond)
        assert body["next_occurrence"] == 1
        assert body["target_account_id"] is None
        assert body["target_account_number"].endswith(bobs["number"][-4:])
        assert body["runs"] == []
        listed = await client.get("/v1/scheduled-transfers", headers=alice.headers)
        assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
        assert (await client.get("/v1/scheduled-transfers", headers=bob.headers)).json()[
            "items"
        ] == []
        foreign = await client.get(f"/v1/scheduled-transfers/{body['id']}", headers=bob.headers)
        assert foreign.status_code == 404

    async def test_bad_requests_are_refused(self, client: httpx.AsyncClient) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        euros = await open_account(client, alice, currency="EUR")
        bobs = await open_account(client, bob)
        soon = utcnow() + dt.timedelta(hours=1)
        past = await schedule(
            client, alice, source, first_run_at=utcnow() - dt.timedelta(hours=1), target=bobs
        )
        assert (past.status_code, past.json()["code"]) == (422, "schedule_in_past")
        once_with_count = await schedule(
            client, alice, source, first_run_at=soon, frequency="once", count=2, target=bobs
        )
        assert once_with_count.json()["code"] == "invalid_schedule"
        ends_before = await schedule(
            client,
            alice,
            source,
            first_run_at=soon,
            frequency="daily",
            until=rfc3339(soon - dt.timedelta(minutes=1)),
            target=bobs,
        )
        assert (ends_before.status_code, ends_before.json()["code"]) == (422, "invalid_schedule")
        mismatch = await schedule(client, alice, source, first_run_at=soon, target=euros)
        assert (mismatch.status_code, mismatch.json()["code"]) == (422, "currency_mismatch")
        foreign_source = await schedule(client, alice, bobs, first_run_at=soon, target=source)
        assert foreign_source.status_code == 404
        naive = await client.post(
            "/v1/scheduled-transfers",
            json={
                "source_account_id": source["id"],
                "target_account_number": bobs["number"],
                "amount": 1,
                "first_run_at": soon.replace(tzinfo=None).isoformat(),
                "frequency": "once",
            },
            headers=alice.headers,
        )
        assert naive.status_code == 422


class TestRunning:
    async def test_each_occurrence_posts_once_and_the_order_ends_after_its_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        created = (
            await schedule(client, alice, source, first_run_at=first, target=bobs, count=2)
        ).json()
        db = app.state.db

        assert await schedules.run_due(db, now=first - dt.timedelta(seconds=1)) == {}
        assert await schedules.run_due(db, now=first) == {"posted": 1}
        # The same moment again: nothing is due any more.
        assert await schedules.run_due(db, now=first) == {}
        after_first = await detail(client, alice, created["id"])
        assert after_first["last_result"] == "posted"
        second = parse(after_first["next_run_at"])
        assert second == occurrence_at(first, Frequency.monthly, 1, ZoneInfo("UTC"))
        assert [run["status"] for run in after_first["runs"]] == ["posted"]
        assert after_first["runs"][0]["entry_id"] is not None

        assert await schedules.run_due(db, now=second) == {"posted": 1}
        done = await detail(client, alice, created["id"])
        assert done["status"] == "completed"
        assert done["next_run_at"] is None
        assert await schedules.run_due(db, now=second + dt.timedelta(days=400)) == {}
        assert await posted_entries(app, created["id"]) == 2
        assert await balance_of(client, bob, bobs) == 20_00
        await assert_ledger_verifies(app)

    async def test_a_declined_occurrence_is_retried_then_failed_and_the_order_goes_on(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        created = (
            await schedule(
                client, alice, source, first_run_at=first, frequency="daily", target=bobs
            )
        ).json()
        db = app.state.db
        moment = first
        for attempt in range(1, RETRIES + 2):
            counts = await schedules.run_due(db, now=moment)
            state = await detail(client, alice, created["id"])
            assert state["last_reason"] == "insufficient_funds"
            if attempt <= RETRIES:
                assert counts == {"declined": 1}
                assert parse(state["next_run_at"]) == moment + dt.timedelta(seconds=RETRY_S)
                assert state["next_occurrence"] == 1
                moment += dt.timedelta(seconds=RETRY_S)
            else:
                assert counts == {"failed": 1}
                assert state["next_occurrence"] == 2
                assert parse(state["next_run_at"]) == first + dt.timedelta(days=1)
        runs = state["runs"]
        assert [(run["occurrence"], run["attempt"], run["status"]) for run in runs] == [
            (1, 3, "failed"),
            (1, 2, "declined"),
            (1, 1, "declined"),
        ]
        # Each try was recorded by the ledger as a declined entry of the source account.
        declines = await client.get(
            f"/v1/accounts/{source['id']}/transactions?status=declined", headers=alice.headers
        )
        assert len(declines.json()["items"]) == 3

        # Funded, the next occurrence posts.
        deposit = await client.post(
            f"/v1/accounts/{source['id']}/deposits",
            json={"amount": 50_00},
            headers={**alice.headers, "Idempotency-Key": "fund-1"},
        )
        assert deposit.status_code == 201
        assert await schedules.run_due(db, now=first + dt.timedelta(days=1)) == {"posted": 1}
        assert await posted_entries(app, created["id"]) == 1
        await assert_ledger_verifies(app)

    async def test_missed_occurrences_run_once_when_the_scheduler_comes_back(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        created = (
            await schedule(
                client, alice, source, first_run_at=first, frequency="daily", target=bobs
            )
        ).json()
        # Down for five days and a bit: one run, not six.
        back = first + dt.timedelta(days=5, hours=1)
        assert await schedules.run_due(app.state.db, now=back) == {"posted": 1}
        assert await schedules.run_due(app.state.db, now=back) == {}
        state = await detail(client, alice, created["id"])
        assert state["runs"][0]["skipped"] == 5
        assert state["next_occurrence"] == 7
        assert parse(state["next_run_at"]) == first + dt.timedelta(days=6)
        assert await balance_of(client, bob, bobs) == 10_00

    async def test_cancel_and_change(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        created = (await schedule(client, alice, source, first_run_at=first, target=bobs)).json()
        moved = first + dt.timedelta(days=2)
        patched = await client.patch(
            f"/v1/scheduled-transfers/{created['id']}",
            json={"amount": 7_00, "description": "Rent", "next_run_at": rfc3339(moved)},
            headers=alice.headers,
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["amount"], patched.json()["description"]) == (7_00, "Rent")
        assert parse(patched.json()["next_run_at"]) == moved
        unchanged = await client.patch(
            f"/v1/scheduled-transfers/{created['id']}",
            json={"amount": None, "next_run_at": None},
            headers=alice.headers,
        )
        assert (unchanged.json()["amount"], parse(unchanged.json()["next_run_at"])) == (
            7_00,
            moved,
        )
        assert await schedules.run_due(app.state.db, now=first) == {}
        assert await schedules.run_due(app.state.db, now=moved) == {"posted": 1}
        assert await balance_of(client, bob, bobs) == 7_00

        cancelled = await client.post(
            f"/v1/scheduled-transfers/{created['id']}/cancel", headers=alice.headers
        )
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["next_run_at"] is None
        again = await client.post(
            f"/v1/scheduled-transfers/{created['id']}/cancel", headers=alice.headers
        )
        assert (again.status_code, again.json()["code"]) == (409, "schedule_not_active")
        assert await schedules.run_due(app.state.db, now=moved + dt.timedelta(days=400)) == {}
        assert await balance_of(client, bob, bobs) == 7_00

    async def test_to_a_payee_and_to_an_own_account(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        savings = await open_account(client, alice, type="savings")
        bobs = await open_account(client, bob)
        payee = (
            await client.post(
                "/v1/payees",
                json={"name": "Bob", "account_number": bobs["number"]},
                headers=alice.headers,
            )
        ).json()
        first = utcnow() + dt.timedelta(minutes=5)
        to_payee = await schedule(
            client, alice, source, first_run_at=first, frequency="once", payee_id=payee["id"]
        )
        assert to_payee.status_code == 201, to_payee.text
        assert to_payee.json()["payee_id"] == payee["id"]
        to_own = await schedule(
            client,
            alice,
            source,
            first_run_at=first,
            frequency="once",
            target_account_id=savings["id"],
        )
        assert to_own.json()["target_account_id"] == savings["id"]
        assert await schedules.run_due(app.state.db, now=first) == {"posted": 2}
        assert await balance_of(client, bob, bobs) == 10_00
        assert await balance_of(client, alice, savings) == 10_00
        for created in (to_payee.json(), to_own.json()):
            assert (await detail(client, alice, created["id"]))["status"] == "completed"


class TestVerify:
    async def test_ledger_verify_flags_a_run_that_names_another_entry(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await make_member(client), await make_member(client)
        source = await open_account(client, alice, balance_minor=100_00)
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        await schedule(client, alice, source, first_run_at=first, frequency="once", target=bobs)
        assert await schedules.run_due(app.state.db, now=first) == {"posted": 1}
        await assert_ledger_verifies(app)
        # A run row pointing at another entry (the deposit) is what verify must catch.
        async with app.state.db.sessionmaker() as session:
            deposit_id = await session.scalar(
                select(JournalEntry.id).where(JournalEntry.kind == "deposit").limit(1)
            )
            await session.execute(update(ScheduledTransferRun).values(entry_id=deposit_id))
            await session.commit()
            report = await verify_ledger(session)
        assert [problem.check for problem in report.problems] == ["schedule_once"]


class TestRacingSchedulers:
    async def test_two_schedulers_on_their_own_connections_run_each_occurrence_once(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Two passes at once, each with its own engine (on PostgreSQL, two pools: real
        concurrency, as two API processes or cron beside the service)."""
        alice, bob = await make_member(client), await make_member(client)
        sources = [await open_account(client, alice, balance_minor=1_000_00) for _ in range(3)]
        bobs = await open_account(client, bob)
        first = utcnow() + dt.timedelta(minutes=5)
        ids = []
        for index in range(30):
            response = await schedule(
                client,
                alice,
                sources[index % 3],
                first_run_at=first,
                frequency="once",
                amount=1_00,
                target=bobs,
            )
            ids.append(response.json()["id"])
        other = Database(app.state.db.settings)
        try:
            results = await asyncio.gather(
                schedules.run_due(app.state.db, now=first),
                schedules.run_due(other, now=first),
                schedules.run_due(app.state.db, now=first),
            )
        finally:
            await close_writer(other)
            await other.dispose()
        assert sum(result["posted"] for result in results) == 30
        for schedule_id in ids:
            assert await posted_entries(app, schedule_id) == 1
        async with app.state.db.sessionmaker() as session:
            runs = await session.scalar(select(func.count()).select_from(ScheduledTransferRun))
        assert runs == 30
        assert await balance_of(client, bob, bobs) == 30_00
        await assert_ledger_verifies(app)
