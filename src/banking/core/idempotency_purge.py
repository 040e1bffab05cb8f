"""Deleting expired idempotency records, a small batch per transaction.

A record is needed for `IDEMPOTENCY_TTL_S` (at least 24 h); after that it is ignored and
only takes space. Every API process runs a background task that purges them each
`IDEMPOTENCY_PURGE_INTERVAL_S` (0 turns it off), and `banking idempotency purge` does the
same once (for cron, or with the task off).

Each batch deletes at most `PURGE_BATCH` rows in its own short write transaction, so on
SQLite the write lock is held for milliseconds and money movements interleave with the
purge. On PostgreSQL several processes may purge at once: rows another transaction holds
are skipped (`SKIP LOCKED`), and the expiry is checked again on the row being deleted, so
a record that a new request has just replaced in place (the store statement reuses an
expired key's row) is never deleted. Errors are logged and retried on the next run; they
never stop the task or the application.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

from sqlalchemy import Delete, Table, delete, select
from sqlalchemy.engine import CursorResult

from banking.core import jobs
from banking.core.db import Database, utcnow, write_transaction
from banking.core.idempotency import IdempotencyRecord
from banking.core.logging import get_logger

log = get_logger("banking.core.idempotency_purge")
PURGE_BATCH = 500
RECORD = cast(Table, IdempotencyRecord.__table__)


def _purge_statement(now: dt.datetime, batch: int) -> Delete:
    due = (
        select(RECORD.c.id)
        .where(RECORD.c.expires_at <= now)
        .order_by(RECORD.c.expires_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return delete(RECORD).where(RECORD.c.expires_at <= now, RECORD.c.id.in_(due))


async def purge_batch(db: Database, *, now: dt.datetime, batch: int = PURGE_BATCH) -> int:
    """Delete at most `batch` records that expired by `now`; returns how many."""
    async with db.sessionmaker() as session, write_transaction(session):
        result = await session.execute(_purge_statement(now, batch))
        return int(cast(CursorResult[Any], result).rowcount)


async def purge_expired(db: Database, *, now: dt.datetime, batch: int = PURGE_BATCH) -> int:
    """Delete every record that expired by `now`, batch after batch; returns how many."""
    total = 0
    while True:
        deleted = await purge_batch(db, now=now, batch=batch)
        total += deleted
        if deleted < batch:
            return total
        # Let waiting requests run between two batches.
        await asyncio.sleep(0)


async def _purge(db: Database) -> None:
    deleted = await purge_expired(db, now=utcnow())
    if deleted:
        log.info("idempotency_purged", records=deleted)


JOB = jobs.PeriodicJob(
    name="idempotency-purge",
    tick=_purge,
    interval_s=lambda settings: settings.idempotency_purge_interval_s,
    failure_event="idempotency_purge_failed",
    logger=log,
)
run = JOB.run
# The start-up hook (no task when IDEMPOTENCY_PURGE_INTERVAL_S is 0). `stop` stops this job
# alone; at shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
