"""The approvals job: every minute each API process expires the pending approvals past
`APPROVAL_TTL_S`, releasing their holds (each one its own short transaction, the row
locked and its status checked again, so several processes never expire one twice).
A decision on a lapsed approval expires it too."""

from __future__ import annotations

from banking.approvals import service as approvals
from banking.core import jobs
from banking.core.db import Database
from banking.core.logging import get_logger

log = get_logger("banking.approvals.job")
INTERVAL_S = 60.0


async def _expire(db: Database) -> None:
    expired = await approvals.expire_due(db)
    if expired:
        log.info("approvals_expired", approvals=expired)


JOB = jobs.PeriodicJob(
    name="approvals-job",
    tick=_expire,
    interval_s=lambda _settings: INTERVAL_S,
    failure_event="approval_expiry_failed",
    logger=log,
)
run = JOB.run
start = JOB.start
stop = JOB.stop
