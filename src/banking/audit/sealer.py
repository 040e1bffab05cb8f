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

from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from banking.audit import service as audit
from banking.audit.models import AuditEvent
from banking.core import jobs, reads
from banking.core.db import Database
from banking.core.logging import get_logger

log = get_logger("banking.audit.sealer")
AUDIT = cast(Table, AuditEvent.__table__)
SEAL_INTERVAL_S = 0.25


# Asked every tick, idle or not, on the read path (core/reads.py): compiled once, and on
# SQLite answered inline, so an idle tick takes no connection of the async engine
# (tests/integration/test_idle_ticks.py).
_UNSEALED = select(AUDIT.c.id).where(AUDIT.c.chain_seq.is_(None)).limit(1)


def _has_unsealed_sync(connection: Connection) -> bool:
    return reads.first(connection, _UNSEALED) is not None


async def seal_once(db: Database) -> int:
    if not await reads.run(db, _has_unsealed_sync):
        return 0
    async with db.sessionmaker() as session:
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
# The start-up hook. `stop` stops this job alone; at
# shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
