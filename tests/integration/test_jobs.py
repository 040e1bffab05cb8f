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
LEADER = jobs.Leader(lock_key=KEY)


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


class Recorder:
    """Stands in for a structlog logger: keeps what was logged."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def error(self, event: str, **_fields: object) -> None:
        self.events.append(("error", event))

    def warning(self, event: str, **_fields: object) -> None:
        self.events.append(("warning", event))


def _job(
    tick: jobs.Tick, *, keep: bool, logger: object = None, changes: list[bool] | None = None
) -> jobs.PeriodicJob:
    return jobs.PeriodicJob(
        name="test-leader",
        tick=tick,
        interval_s=lambda _settings: 0.01,
        failure_event="test_leader_failed",
        logger=logger or Recorder(),
        first_delay_s=0.0,
        leader=jobs.Leader(
            lock_key=KEY,
            keep=keep,
            lost_event="test_lost_lock",
            on_change=None if changes is None else changes.append,
        ),
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
            "scheduler",
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
        one, other = jobs.Leadership(first, LEADER), jobs.Leadership(second, LEADER)
        assert await one.acquire()
        assert not await other.acquire()
        assert await _holders(first) == 1

        async def tick(_db: Database) -> None:
            raise AssertionError("only the leader ticks")

        # A single run (the interest job's run_once) reports that it did not lead.
        assert not await _job(tick, keep=False).run_once(second)
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
        other = jobs.Leadership(second, LEADER)
        assert not await other.acquire()
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)
        assert await other.acquire()
        await other.release()

    async def test_a_failing_tick_is_logged_and_keeps_the_lock(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, _ = processes
        calls = 0
        third = asyncio.Event()

        async def tick(_db: Database) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                third.set()
            raise RuntimeError("lost the receiver")

        logger = Recorder()
        stopping = asyncio.Event()
        job = _job(tick, keep=True, logger=logger)
        loop = asyncio.create_task(job.run(first, 0.01, stopping=stopping))
        await asyncio.wait_for(third.wait(), timeout=10)
        assert await _holders(first) == 1
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)
        assert await _holders(first) == 0
        assert set(logger.events) == {("error", "test_leader_failed")}

    async def test_a_lost_connection_is_logged_and_the_lock_taken_again(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, second = processes
        ticks = 0
        ticked = asyncio.Event()

        async def tick(_db: Database) -> None:
            nonlocal ticks
            ticks += 1
            ticked.set()

        logger, changes = Recorder(), []
        stopping = asyncio.Event()
        job = _job(tick, keep=True, logger=logger, changes=changes)
        loop = asyncio.create_task(job.run(first, 0.01, stopping=stopping))
        await asyncio.wait_for(ticked.wait(), timeout=10)
        async with second.engine.connect() as admin:
            # The leader's connection dies (a restarted server, a cut network).
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND classid = 0 AND objid = :key"
                ),
                {"key": KEY},
            )
            await admin.commit()
        ticked.clear()
        await asyncio.wait_for(ticked.wait(), timeout=10)
        for _ in range(100):
            if ("warning", "test_lost_lock") in logger.events:
                break
            ticked.clear()
            await asyncio.wait_for(ticked.wait(), timeout=10)
        stopping.set()
        await asyncio.wait_for(loop, timeout=10)
        assert logger.events == [("warning", "test_lost_lock")]
        assert changes == [True, False, True, False]

    async def test_a_process_that_does_not_lead_skips_its_ticks_until_it_can(
        self, processes: tuple[Database, Database]
    ) -> None:
        first, second = processes
        leader = jobs.Leadership(second, LEADER)
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
