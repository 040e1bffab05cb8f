"""Periodic background jobs: one loop for every job an API process runs on a timer.

A `PeriodicJob` names a job, its tick (`tick(db)`, one unit of work) and the setting that
gives its interval. `start(app)` runs its loop as a task (none when the interval is 0);
`stop(app)` ends it at a safe point. The loop:

- waits `min(interval, first_delay_s)` before the first tick, then the interval between
  ticks (a job's `run` can also be driven directly, as `banking webhooks run` does);
- logs an exception from a tick as `failure_event` (with its type only: a message may
  hold data) and carries on at the next tick; nothing stops the task or the application;
- with a `leader` (`Leader`), on PostgreSQL, ticks only in the process that holds its
  session advisory lock on a connection of its own; the others skip the tick. With
  `keep` the leader keeps the lock between ticks, through failing ticks too, and checks
  its connection each tick (a lost one is logged as `lost_event`, and the lock tried for
  again at once); a process that does not lead waits at least `standby_interval_s`
  before trying again. Without `keep` each tick takes the lock and gives it back. A lock
  goes back to the pool unlocked. On SQLite the single process ticks;
- stops at a safe point: `stop` asks the loop to stop (an event, which also wakes the wait
  between ticks at once), lets a tick in flight finish for up to `STOP_TIMEOUT_S`, and
  only then cancels it. No tick starts once stop was asked. At shutdown the lifespan
  stops every job at once (`stop_all`), so all of them share that one bound.

`tests/unit/test_jobs.py` checks the timing, the error handling and the stop;
`tests/integration/test_jobs.py` the leader election on PostgreSQL and the stop with the
app; the jobs' own tests check what each tick does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from banking.core.config import Settings
from banking.core.db import Database
from banking.core.logging import get_logger

log = get_logger("banking.core.jobs")
# How long stop waits for a tick in flight before cancelling it.
STOP_TIMEOUT_S = 5.0

Tick = Callable[[Database], Awaitable[object]]


@dataclass(frozen=True, kw_only=True)
class Leader:
    """Leader election for a job on PostgreSQL: by the session advisory lock `lock_key`."""

    lock_key: int
    # Keep the lock between ticks (else each tick takes it and gives it back).
    keep: bool = False
    # With `keep`: a process that does not lead waits at least this long between tries.
    standby_interval_s: float = 0.0
    # With `keep`: logged (a warning) when the connection holding the lock is gone.
    lost_event: str = "job_lost_lock"
    # Told when this process takes the lock (True) and when it gives it up (False).
    on_change: Callable[[bool], None] | None = None


class Leadership:
    """Who ticks: every process without a `Leader`, the single process on SQLite, and on
    PostgreSQL the holder of the leader's advisory lock on a connection of its own (when
    that process dies its connection closes and the lock goes with it)."""

    def __init__(self, db: Database, leader: Leader | None, logger: Any = log) -> None:
        self.db = db
        self.leader = leader
        self.logger = logger
        self._connection: AsyncConnection | None = None

    @property
    def leads(self) -> bool:
        return self.leader is None or self.db.is_sqlite or self._connection is not None

    async def acquire(self) -> bool:
        """True when this process leads (checking a kept lock, or taking the lock if it is
        free); False when another process holds it."""
        if self.leader is None or self.db.is_sqlite:
            return True
        if self._connection is not None:
            try:
                # The lock lives as long as this connection: check it is still there.
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()
                return True
            except Exception as exc:
                self.logger.warning(self.leader.lost_event, error_type=type(exc).__name__)
                await self.release()
        connection = await self.db.engine.connect()
        try:
            taken = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.leader.lock_key}
                )
            ).scalar()
            # Autobegin opened a transaction; the session-level lock outlives its end.
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        if self.leader.on_change is not None:
            self.leader.on_change(True)
        return True

    async def release(self) -> None:
        """Give the lock back. The connection returns to the pool only unlocked: a pooled
        connection still holding the lock would keep every process from leading."""
        connection, self._connection = self._connection, None
        if connection is None or self.leader is None:
            return
        if self.leader.on_change is not None:
            self.leader.on_change(False)
        try:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": self.leader.lock_key}
            )
            await connection.commit()
            await connection.close()
        except BaseException as exc:
            # Closing the database connection itself releases the lock.
            with contextlib.suppress(Exception):
                await connection.invalidate()
            if not isinstance(exc, Exception):
                raise


async def _wait(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if stop is asked meanwhile; True when stop was asked."""
    if not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stopping.wait()
    return stopping.is_set()


@dataclass
class Running:
    """A started job: its task and the event that asks it to stop."""

    task: asyncio.Task[None]
    stopping: asyncio.Event


@dataclass(frozen=True, kw_only=True)
class PeriodicJob:
    """One background job. `name` names its task and its entry in `app.state.jobs`."""

    name: str
    tick: Tick
    interval_s: Callable[[Settings], float]
    failure_event: str
    logger: Any = field(default=log, repr=False)
    first_delay_s: float = math.inf
    leader: Leader | None = None
    # For ticks that share something across a run (the dispatcher's HTTP client): entered
    # once per run, it yields the tick the loop calls instead of `tick`.
    prepare: Callable[[Database], AbstractAsyncContextManager[Tick]] | None = None

    async def run_once(self, db: Database) -> bool:
        """One tick if this process leads it; False when another process holds the lock.
        Errors propagate."""
        leadership = Leadership(db, self.leader, self.logger)
        if not await leadership.acquire():
            return False
        try:
            await self.tick(db)
        finally:
            await leadership.release()
        return True

    async def run(
        self, db: Database, interval_s: float, *, stopping: asyncio.Event | None = None
    ) -> None:
        """The loop, until `stopping` is set (or the task is cancelled)."""
        stopping = stopping or asyncio.Event()
        leadership = Leadership(db, self.leader, self.logger)
        async with self._ticks(db) as tick:
            try:
                delay = min(interval_s, self.first_delay_s)
                while not await _wait(stopping, delay):
                    await self._tick(db, tick, leadership)
                    delay = interval_s
                    if self.leader is not None and not leadership.leads:
                        delay = max(interval_s, self.leader.standby_interval_s)
            finally:
                await leadership.release()

    async def _tick(self, db: Database, tick: Tick, leadership: Leadership) -> None:
        try:
            if await leadership.acquire():
                try:
                    await tick(db)
                finally:
                    if self.leader is not None and not self.leader.keep:
                        await leadership.release()
        except Exception as exc:
            self.logger.error(self.failure_event, error_type=type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _ticks(self, db: Database) -> AsyncIterator[Tick]:
        if self.prepare is None:
            yield self.tick
        else:
            async with self.prepare(db) as tick:
                yield tick

    async def start(self, app: FastAPI) -> None:
        """Start-up hook (nothing when the interval is 0)."""
        interval_s = self.interval_s(app.state.settings)
        if interval_s <= 0:
            return
        stopping = asyncio.Event()
        task = asyncio.create_task(
            self.run(app.state.db, interval_s, stopping=stopping), name=self.name
        )
        running_jobs(app)[self.name] = Running(task, stopping)

    async def stop(self, app: FastAPI, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop this job alone: ask the loop to stop, let a tick in flight finish (a safe
        point) for up to `timeout_s`, then cancel it (a half-done transaction rolls back).
        At shutdown the lifespan stops every job with `stop_all` instead."""
        running = running_jobs(app).pop(self.name, None)
        if running is not None:
            await _stop([running], timeout_s)


async def stop_all(app: FastAPI, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop every started job at once, all within one `timeout_s` (the lifespan calls this
    first at shutdown, before any shutdown hook; no job has a hook of its own)."""
    running = running_jobs(app)
    started = list(running.values())
    running.clear()
    await _stop(started, timeout_s)


async def _stop(running: list[Running], timeout_s: float) -> None:
    for job in running:
        job.stopping.set()
    tasks = {job.task for job in running}
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, timeout=timeout_s)
    finally:
        late = [task for task in tasks if not task.done()]
        for task in late:
            log.warning("job_stop_timed_out", job=task.get_name(), timeout_s=timeout_s)
            task.cancel()
        if late:
            await asyncio.wait(late)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.error("job_failed", job=task.get_name(), error_type=type(error).__name__)


def running_jobs(app: FastAPI) -> dict[str, Running]:
    """The app's started jobs, by name."""
    running: dict[str, Running] | None = getattr(app.state, "jobs", None)
    if running is None:
        running = app.state.jobs = {}
    return running
