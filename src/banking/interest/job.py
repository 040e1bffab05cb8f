"""The interest job: every `INTEREST_JOB_INTERVAL_S` each API process tries to run
`interest.run_due` (accrue through yesterday, post last month). Both steps are
idempotent; on PostgreSQL a session advisory lock makes one process the leader of each
run (the others skip it), on SQLite the service is one process. Errors are logged and
retried on the next run; they never stop the task or the application (core/jobs.py).
"""

from __future__ import annotations

from banking.core import jobs
from banking.core.db import Database
from banking.core.logging import get_logger
from banking.interest import service as interest

log = get_logger("banking.interest.job")
# Any constant shared by all processes: the advisory lock of the interest job's leader.
_LEADER_LOCK_KEY = 0x1D7E_2E57
# The first run waits a little, so that start-up (and a rolling restart) is not slowed.
FIRST_RUN_DELAY_S = 30.0


async def _run_due(db: Database) -> None:
    accrued, posted = await interest.run_due(db)
    if accrued.days or posted.accounts or posted.declined:
        log.info(
            "interest_run",
            days_accrued=accrued.days,
            month=posted.month,
            accounts_posted=posted.accounts,
            declined=posted.declined,
        )


JOB = jobs.PeriodicJob(
    name="interest-job",
    tick=_run_due,
    interval_s=lambda settings: settings.interest_job_interval_s,
    failure_event="interest_job_failed",
    logger=log,
    first_delay_s=FIRST_RUN_DELAY_S,
    leader=jobs.Leader(lock_key=_LEADER_LOCK_KEY),
)
# One run, if this process leads it; False when another process holds the lock.
run_once = JOB.run_once
run = JOB.run
# The start-up hook (no task when INTEREST_JOB_INTERVAL_S is 0). `stop` stops this job alone; at
# shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
