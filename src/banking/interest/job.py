"""The interest job: every `INTEREST_JOB_INTERVAL_S` each API process tries to run
`interest.run_due` (accrue through yesterday, post last month). Both steps are
idempotent; on PostgreSQL a session advisory lock makes one process the leader of each
run (the others skip it), on SQLite the service is one process. Errors are logged and
retried on the next run; they never stop the task or the application.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from sqlalchemy import text

from banking.core.db import Database
from banking.core.logging import get_logger
from banking.interest import service as interest

log = get_logger("banking.interest.job")
# Any constant shared by all processes: the advisory lock of the interest job's leader.
_LEADER_LOCK_KEY = 0x1D7E_2E57


async def run_once(db: Database) -> bool:
    """One run, if this process leads it; False when another process holds the lock."""
    if db.engine.dialect.name != "postgresql":
        accrued, posted = await interest.run_due(db)
        _log(accrued, posted)
        return True
    async with db.engine.connect() as connection:
        leader = (
            await connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _LEADER_LOCK_KEY}
            )
        ).scalar()
        await connection.commit()
        if not leader:
            return False
        try:
            accrued, posted = await interest.run_due(db)
            _log(accrued, posted)
        finally:
            await connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": _LEADER_LOCK_KEY}
            )
            await connection.commit()
    return True


def _log(accrued: interest.AccrualReport, posted: interest.PostingReport) -> None:
    if accrued.days or posted.accounts or posted.declined:
        log.info(
            "interest_run",
            days_accrued=accrued.days,
            month=posted.month,
            accounts_posted=posted.accounts,
            declined=posted.declined,
        )


# The first run waits a little, so that start-up (and a rolling restart) is not slowed.
FIRST_RUN_DELAY_S = 30.0


async def run(db: Database, interval_s: float) -> None:
    await asyncio.sleep(min(interval_s, FIRST_RUN_DELAY_S))
    while True:
        try:
            await run_once(db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("interest_job_failed", error_type=type(exc).__name__)
        await asyncio.sleep(interval_s)


async def start(app: FastAPI) -> None:
    """Start-up hook (nothing when INTEREST_JOB_INTERVAL_S is 0)."""
    interval_s = app.state.settings.interest_job_interval_s
    if interval_s > 0:
        app.state.interest_job = asyncio.create_task(
            run(app.state.db, interval_s), name="interest-job"
        )


async def stop(app: FastAPI) -> None:
    """Shutdown hook: cancel the task and wait for it (a half-done account rolls back)."""
    task: asyncio.Task[None] | None = getattr(app.state, "interest_job", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
