"""The background task that chains new audit rows four times a second.

It runs in every API process; on PostgreSQL an advisory lock inside `seal_pending` lets
only one process seal at a time. It first checks with a cheap read whether anything is
unsealed, so an idle SQLite service does not take the writer lock at every tick. Short
ticks and batches of at most `SEAL_BATCH` rows keep each seal brief: a long one would
hold SQLite's write lock, and the event loop, while money is waiting to commit. Errors
are logged and retried on the next tick; they never stop the task or the application
(core/jobs.py).
"""

from __future__ import annotations

from sqlalchemy import select

from banking.audit import service as audit
from banking.audit.models import AuditEvent
from banking.core import jobs
from banking.core.db import Database
from banking.core.logging import get_logger

log = get_logger("banking.audit.sealer")
SEAL_INTERVAL_S = 0.25


async def seal_once(db: Database) -> int:
    async with db.sessionmaker() as session:
        pending = (
            await session.execute(
                select(AuditEvent.id).where(AuditEvent.chain_seq.is_(None)).limit(1)
            )
        ).first()
        if pending is None:
            return 0
        return await audit.seal_pending(session)


async def _seal(db: Database) -> None:
    await seal_once(db)


JOB = jobs.PeriodicJob(
    name="audit-sealer",
    tick=_seal,
    interval_s=lambda _settings: SEAL_INTERVAL_S,
    failure_event="audit_seal_failed",
    logger=log,
    first_delay_s=0.0,
)
run = JOB.run
# Start-up and shutdown hooks; stop lets a seal in flight finish (core/jobs.py).
start = JOB.start
stop = JOB.stop
