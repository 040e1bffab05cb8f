"""The in-process scheduler: runs due occurrences every `SCHEDULER_INTERVAL_S`.

On SQLite the service is one process, which runs them. On PostgreSQL every API process
starts the task, but only the leader runs occurrences: the process holding the
session-level advisory lock `LEADER_LOCK_KEY` on a connection of its own. When the leader
dies its connection closes, PostgreSQL releases the lock, and another process takes it at
its next tick (within `SCHEDULER_INTERVAL_S`). Leadership is a matter of efficiency, not
of safety: each occurrence is guarded by its schedule row's lock, its deterministic
idempotency claim and a unique run row (see `service.py`), so even two leaders (or
`banking schedules run-due` beside the task) never run one twice. Errors are logged and
retried at the next tick; they never stop the task or the application.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from banking.core.db import Database
from banking.core.logging import get_logger
from banking.schedules import service as schedules

log = get_logger("banking.schedules.scheduler")
# "bank" "sche" as a signed 64-bit number.
LEADER_LOCK_KEY = 0x62616E6B_73636865
LEADER = Gauge(
    "banking_scheduler_leader",
    "1 while this process runs scheduled transfers.",
    multiprocess_mode="livesum",
)


class Leadership:
    """Who runs the occurrences: always this process on SQLite; on PostgreSQL, the holder
    of the advisory lock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self.db.is_sqlite or self._connection is not None

    async def ensure(self) -> bool:
        if self.db.is_sqlite:
            return True
        if self._connection is not None:
            try:
                # The lock lives as long as this connection: check it is still there.
                await self._connection.execute(text("SELECT 1"))
                return True
            except Exception as exc:
                log.warning("scheduler_lost_lock", error_type=type(exc).__name__)
                await self.release()
        connection = await self.db.engine.connect()
        try:
            taken = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
                )
            ).scalar_one()
            # Autobegin opened a transaction; the session-level lock outlives its end.
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        LEADER.set(1)
        log.info("scheduler_leader")
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        LEADER.set(0)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()


async def run(db: Database, interval_s: float) -> None:
    leadership = Leadership(db)
    try:
        while True:
            try:
                if await leadership.ensure():
                    counts = await schedules.run_due(db)
                    if counts:
                        log.info("schedules_ran", **counts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("scheduler_failed", error_type=type(exc).__name__)
            await asyncio.sleep(interval_s)
    finally:
        await leadership.release()


async def start(app: FastAPI) -> None:
    """Start-up hook (nothing when SCHEDULER_INTERVAL_S is 0)."""
    interval_s = app.state.settings.scheduler_interval_s
    if interval_s > 0:
        app.state.scheduler = asyncio.create_task(run(app.state.db, interval_s), name="scheduler")


async def stop(app: FastAPI) -> None:
    """Shutdown hook: cancel the task and wait for it (a half-done run rolls back)."""
    task: asyncio.Task[None] | None = getattr(app.state, "scheduler", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
