"""The periodic-job loop (core/jobs.py): ticks at its interval, survives a failing tick,
and stops at a safe point. No database: the ticks are plain coroutines."""

from __future__ import annotations

import asyncio
import itertools
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import FastAPI

from banking.core import jobs
from banking.core.db import Database

# Nothing here touches a database: the loop only hands it to the tick.
DB = cast(Database, SimpleNamespace(is_sqlite=True))


class Recorder:
    """Stands in for a structlog logger: keeps what was logged."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.errors.append((event, fields))


def make_job(tick: jobs.Tick, **fields: Any) -> jobs.PeriodicJob:
    return jobs.PeriodicJob(
        name="test-job",
        tick=tick,
        interval_s=lambda settings: settings.test_interval_s,
        failure_event="test_job_failed",
        **fields,
    )


def make_app(interval_s: float) -> FastAPI:
    app = FastAPI()
    app.state.settings = SimpleNamespace(test_interval_s=interval_s)
    app.state.db = DB
    return app


class TestTicks:
    async def test_ticks_come_at_the_interval_the_first_after_one_interval(self) -> None:
        started = time.monotonic()
        moments: list[float] = []
        three = asyncio.Event()

        async def tick(_db: Database) -> None:
            moments.append(time.monotonic() - started)
            if len(moments) == 3:
                three.set()

        app = make_app(0.1)
        job = make_job(tick)
        await job.start(app)
        await asyncio.wait_for(three.wait(), timeout=10)
        await job.stop(app)
        assert moments[0] >= 0.09
        gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
        assert all(gap >= 0.09 for gap in gaps), gaps

    async def test_a_first_delay_shorter_than_the_interval_brings_the_first_tick_forward(
        self,
    ) -> None:
        ticked = asyncio.Event()

        async def tick(_db: Database) -> None:
            ticked.set()

        app = make_app(3600)
        job = make_job(tick, first_delay_s=0.0)
        await job.start(app)
        await asyncio.wait_for(ticked.wait(), timeout=10)
        await job.stop(app)

    async def test_an_interval_of_zero_starts_no_task(self) -> None:
        async def tick(_db: Database) -> None:
            raise AssertionError("no tick expected")

        app = make_app(0)
        job = make_job(tick)
        await job.start(app)
        assert "test-job" not in jobs.running_jobs(app)
        await job.stop(app)

    async def test_an_error_in_a_tick_is_logged_and_the_loop_goes_on(self) -> None:
        calls = 0
        second = asyncio.Event()

        async def tick(_db: Database) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("database went away")
            second.set()

        logger = Recorder()
        app = make_app(0.01)
        job = make_job(tick, logger=logger)
        await job.start(app)
        task = jobs.running_jobs(app)["test-job"].task
        assert task.get_name() == "test-job"
        await asyncio.wait_for(second.wait(), timeout=10)
        await job.stop(app)
        # The type only: an exception's message may carry data.
        assert logger.errors == [("test_job_failed", {"error_type": "RuntimeError"})]

    async def test_run_once_ticks_and_lets_an_error_through(self) -> None:
        async def tick(_db: Database) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await make_job(tick).run_once(DB)


class TestStop:
    async def test_stop_lets_the_tick_in_flight_finish(self) -> None:
        started = asyncio.Event()
        finished = False

        async def tick(_db: Database) -> None:
            nonlocal finished
            started.set()
            await asyncio.sleep(0.2)
            finished = True

        app = make_app(0.01)
        job = make_job(tick)
        await job.start(app)
        task = jobs.running_jobs(app)["test-job"].task
        await asyncio.wait_for(started.wait(), timeout=10)
        await job.stop(app)
        assert finished
        assert task.done()
        assert not task.cancelled()
        assert "test-job" not in jobs.running_jobs(app)

    async def test_stop_while_the_loop_sleeps_returns_at_once(self) -> None:
        async def tick(_db: Database) -> None:
            raise AssertionError("no tick expected")

        app = make_app(3600)
        job = make_job(tick)
        await job.start(app)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await job.stop(app)
        assert time.monotonic() - started < 1.0

    async def test_no_tick_starts_once_stop_was_asked(self) -> None:
        ticks = 0
        in_flight = asyncio.Event()
        go_on = asyncio.Event()

        async def tick(_db: Database) -> None:
            nonlocal ticks
            ticks += 1
            in_flight.set()
            await go_on.wait()

        stopping = asyncio.Event()
        task = asyncio.create_task(make_job(tick).run(DB, 0.0, stopping=stopping))
        await asyncio.wait_for(in_flight.wait(), timeout=10)
        stopping.set()
        go_on.set()
        await asyncio.wait_for(task, timeout=10)
        assert ticks == 1

    async def test_a_stop_asked_before_the_first_tick_runs_none(self) -> None:
        async def tick(_db: Database) -> None:
            raise AssertionError("no tick expected")

        stopping = asyncio.Event()
        stopping.set()
        await asyncio.wait_for(
            make_job(tick, first_delay_s=0.0).run(DB, 0.0, stopping=stopping), timeout=10
        )

    async def test_a_tick_that_outlasts_the_timeout_is_cancelled(self) -> None:
        started = asyncio.Event()
        cancelled = False

        async def tick(_db: Database) -> None:
            nonlocal cancelled
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled = True
                raise

        app = make_app(0.01)
        job = make_job(tick)
        await job.start(app)
        task = jobs.running_jobs(app)["test-job"].task
        await asyncio.wait_for(started.wait(), timeout=10)
        begun = time.monotonic()
        await job.stop(app, timeout_s=0.1)
        assert time.monotonic() - begun < 5.0
        assert cancelled
        assert task.cancelled()


class TestLeadership:
    async def test_without_a_lock_key_or_on_sqlite_every_process_leads(self) -> None:
        for leader in (None, jobs.Leader(lock_key=0x1234, keep=True)):
            leadership = jobs.Leadership(DB, leader)
            assert await leadership.acquire()
            assert leadership.leads
            await leadership.release()


class TestStopAll:
    async def test_every_job_finishes_its_tick_in_flight(self) -> None:
        finished: set[str] = set()
        in_flight: dict[str, asyncio.Event] = {"one": asyncio.Event(), "two": asyncio.Event()}

        def slow(name: str) -> jobs.Tick:
            async def tick(_db: Database) -> None:
                in_flight[name].set()
                await asyncio.sleep(0.2)
                finished.add(name)

            return tick

        app = make_app(0.01)
        for name in in_flight:
            await jobs.PeriodicJob(
                name=name, tick=slow(name), interval_s=lambda _: 0.01, failure_event="failed"
            ).start(app)
        for event in in_flight.values():
            await asyncio.wait_for(event.wait(), timeout=10)
        await jobs.stop_all(app)
        assert finished == {"one", "two"}
        assert jobs.running_jobs(app) == {}

    async def test_the_jobs_share_one_bound(self) -> None:
        in_flight = [asyncio.Event() for _ in range(3)]

        def stuck(event: asyncio.Event) -> jobs.Tick:
            async def tick(_db: Database) -> None:
                event.set()
                await asyncio.sleep(3600)

            return tick

        app = make_app(0.01)
        for number, event in enumerate(in_flight):
            await jobs.PeriodicJob(
                name=f"job-{number}",
                tick=stuck(event),
                interval_s=lambda _: 0.01,
                failure_event="failed",
            ).start(app)
        tasks = [running.task for running in jobs.running_jobs(app).values()]
        for event in in_flight:
            await asyncio.wait_for(event.wait(), timeout=10)
        begun = time.monotonic()
        await jobs.stop_all(app, timeout_s=0.5)
        # One bound for all three (0.5 s), not one after the other (1.5 s).
        assert time.monotonic() - begun < 1.2
        assert all(task.cancelled() for task in tasks)

    def test_the_default_bound_is_the_documented_five_seconds(self) -> None:
        # README and docs/deployment.md promise 5 s; the grace periods there count on it.
        assert jobs.STOP_TIMEOUT_S == 5.0
