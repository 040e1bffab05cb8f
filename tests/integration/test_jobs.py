"""The periodic jobs (core/jobs.py) in the app, and their leader election on PostgreSQL:
two `Database`s stand for two API processes; the lock is a session advisory lock, seen in
`pg_locks`."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from banking.app import create_app
from banking.core import jobs
from banking.core.config import Settings
from banking.core.db import Database
from banking.ledger import sweeper
from tests.conftest import make_settings
from tests.databases import ON_POSTGRES

KEY = 0x7465_7374  # below 2**32: pg_locks shows it as objid with classid 0


@pytest.fixture
async def processes(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first, second = Database(make_settings(database_url)), Database(make_settings(database_url))
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def _holders(db: Database) -> int:
    async with db.engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = 0 AND objid = :key AND granted"
            ),
            {"key": KEY},
        )
    return int(count or 0)


def _job(tick: jobs.Tick, *, keep: bool) -> jobs.PeriodicJob:
    return jobs.PeriodicJob(
        name="test-leader",
        tick=tick,
        interval_s=lambda _settings: 0.01,
        failure_event="test_leader_failed",
        first_delay_s=0.0,
        leader_lock_key=KEY,
        keep_leadership=keep,
    )


class TestWithTheApp:
    async def test_the_jobs_start_with_the_app_and_stop_with_it_uncancelled(
        self, settings: Settings
    ) -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            started = dict(jobs.running_jobs(app))
        assert set(started) == {
            "approvals-job",
            "audit-sealer",
            "events-dispatcher",
            "hold-sweeper",
            "idempotency-purge",
            "interest-job",
        }
        assert all(running.task.done() for running in started.values())
        assert not any(running.task.cancelled() for running in started.values())
        assert jobs.running_jobs(app) == {}

    @pytest.mark.parametrize("settings_overrides", [{"hold_sweep_interval_s": 0.01}], indirect=True)
    async def test_a_tick_in_flight_at_shutdown_finishes_its_database_work(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        in_flight = asyncio.Event()
        finished = False

        async def slow_sweep(db: Database, *, now: dt.datetime, lead: bool = True) -> int:
            nonlocal finished
            in_flight.set()
            await asyncio.sleep(0.2)
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            finished = True
            return 0

        monkeypatch.setattr(sweeper, "sweep", slow_sweep)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(in_flight.wait(), timeout=10)
        assert finished


@pytest.mark.skipif(not ON_POSTGRES, reason="leader election is PostgreSQL's")
class TestLeadership:
    async def test_one_process_leads_and_a_released_lock_leaves_the_pool_unlocked(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, second = processes
        one, other = jobs.Leadership(first, KEY), jobs.Leadership(second, KEY)
        assert await one.acquire()
        assert not await other.acquire()
        assert await _holders(first) == 1
        await one.release()
        # The connection went back to the pool without the lock.
        assert await _holders(first) == 0
        assert await other.acquire()
        await other.release()

    async def test_a_kept_leadership_holds_between_ticks_until_the_loop_stops(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, second = processes
        ticks = 0
        two = asyncio.Event()

        async def tick(_db: Database) -> None:
            nonlocal ticks
            ticks += 1
            if ticks == 2:
                two.set()

        stopping = asyncio.Event()
        loop = asyncio.create_task(_job(tick, keep=True).run(first, 0.01, stopping=stopping))
        await asyncio.wait_for(two.wait(), timeout=10)
        other = jobs.Leadership(second, KEY)
        assert not await other.acquire()
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)
        assert await other.acquire()
        await other.release()

    async def test_an_error_gives_up_a_kept_leadership(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, _ = processes
        failed = asyncio.Event()
        held_while_failing: list[int] = []

        async def tick(db: Database) -> None:
            held_while_failing.append(await _holders(db))
            failed.set()
            raise RuntimeError("lost the receiver")

        stopping = asyncio.Event()
        loop = asyncio.create_task(_job(tick, keep=True).run(first, 3600, stopping=stopping))
        await asyncio.wait_for(failed.wait(), timeout=10)
        for _ in range(100):
            if await _holders(first) == 0:
                break
            await asyncio.sleep(0.01)
        assert held_while_failing == [1]
        assert await _holders(first) == 0
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)

    async def test_a_process_that_does_not_lead_skips_its_ticks_until_it_can(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, second = processes
        leader = jobs.Leadership(second, KEY)
        assert await leader.acquire()
        ticked = asyncio.Event()

        async def tick(_db: Database) -> None:
            ticked.set()

        stopping = asyncio.Event()
        loop = asyncio.create_task(_job(tick, keep=False).run(first, 0.01, stopping=stopping))
        await asyncio.sleep(0.3)
        assert not ticked.is_set()
        await leader.release()
        await asyncio.wait_for(ticked.wait(), timeout=10)
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)
        # Without `keep_leadership` each tick gave the lock back.
        assert await _holders(first) == 0
