"""The hold sweeper: releases lapsed card holds in the background (ledger/lapsed.py).

Reads never write, so a lapsed hold stays stored as `approved` until the write path
releases it; reads meanwhile compute it as released. Every API process runs this task each
`HOLD_SWEEP_INTERVAL_S` (0 turns it off; then schedule `banking holds expire`). A cheap
indexed read first checks whether any hold has lapsed, so an idle service takes no write
lock. On PostgreSQL the sweep's transaction first takes an advisory lock without waiting
(`pg_try_advisory_xact_lock`): the process that gets it is the leader of that run and the
others skip it, so several processes never sweep at once; on SQLite the one server process
sweeps through the ledger's writer. Batches of at most `lapsed.RELEASE_BATCH` holds keep
each transaction short. Errors are logged and retried on the next run; they never stop
the task or the application.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import func, literal, select, true
from sqlalchemy.engine import Connection

from banking.core import jobs, reads
from banking.core.db import Database, UTCDateTime
from banking.core.logging import get_logger
from banking.ledger import lapsed
from banking.ledger.writer import writer_for

log = get_logger("banking.ledger.sweeper")
# Any constant shared by all processes: the advisory lock of the sweep's leader.
SWEEP_LOCK_KEY = 0x686F6C6473  # "holds"


def _lapsed_exists_sync(connection: Connection, now: dt.datetime) -> bool:
    """One probe of the index (status, expires_at)."""
    moment = literal(now, UTCDateTime())
    row = connection.execute(
        select(lapsed.AUTHORIZATION.c.id).where(lapsed.lapsed(moment)).limit(1)
    ).first()
    return row is not None


def _sweep_batch_sync(connection: Connection, now: dt.datetime, *, lead: bool) -> int | None:
    """One batch in the caller's transaction; None when another process leads this run."""
    if lead and connection.dialect.name == "postgresql":
        taken = connection.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY)))
        if not taken.scalar():
            return None
    return lapsed.release_sync(connection, now=now, where=true())


async def sweep(db: Database, *, now: dt.datetime, lead: bool = True) -> int:
    """Release every hold lapsed by `now`, batch after batch; returns how many. With
    `lead` (the background task), a PostgreSQL process that is not the run's leader
    releases nothing."""
    if not await reads.run(db, lambda connection: _lapsed_exists_sync(connection, now)):
        return 0
    writer = writer_for(db)
    total = 0
    while True:
        released = await writer.run(
            lambda connection: _sweep_batch_sync(connection, now, lead=lead)
        )
        if released is None:
            return total
        total += released
        if released < lapsed.RELEASE_BATCH:
            return total
        # Let waiting requests run between two batches.
        await asyncio.sleep(0)


async def _sweep_lapsed(db: Database) -> None:
    released = await sweep(db, now=db.clock())
    if released:
        log.info("holds_released", holds=released)


JOB = jobs.PeriodicJob(
    name="hold-sweeper",
    tick=_sweep_lapsed,
    interval_s=lambda settings: settings.hold_sweep_interval_s,
    failure_event="hold_sweep_failed",
    logger=log,
)
run = JOB.run
# The start-up hook (no task when HOLD_SWEEP_INTERVAL_S is 0). `stop` stops this job alone; at
# shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
