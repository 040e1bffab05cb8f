"""The in-process scheduler: runs due occurrences every `SCHEDULER_INTERVAL_S`.

On SQLite the service is one process, which runs them. On PostgreSQL every API process
starts the task, but only the leader runs occurrences: the process holding the
session-level advisory lock `LEADER_LOCK_KEY` on a connection of its own. When the leader
dies its connection closes, PostgreSQL releases the lock, and another process takes it at
its next tick (within `SCHEDULER_INTERVAL_S`). Leadership is a matter of efficiency, not
of safety: each occurrence is guarded by its schedule row's lock, its deterministic
idempotency claim and a unique run row (see `service.py`), so even two leaders (or
`banking schedules run-due` beside the task) never run one twice. Errors are logged and
retried at the next tick; they never stop the task or the application (core/jobs.py).
"""

from __future__ import annotations

from prometheus_client import Gauge

from banking.core import jobs
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


def _leadership(leads: bool) -> None:
    LEADER.set(int(leads))
    if leads:
        log.info("scheduler_leader")


async def _run_due(db: Database) -> None:
    counts = await schedules.run_due(db)
    if counts:
        log.info("schedules_ran", **counts)


JOB = jobs.PeriodicJob(
    name="scheduler",
    tick=_run_due,
    interval_s=lambda settings: settings.scheduler_interval_s,
    failure_event="scheduler_failed",
    logger=log,
    first_delay_s=0.0,
    leader=jobs.Leader(
        lock_key=LEADER_LOCK_KEY,
        keep=True,
        lost_event="scheduler_lost_lock",
        on_change=_leadership,
    ),
)
run = JOB.run
# The start-up hook (no task when SCHEDULER_INTERVAL_S is 0). `stop` stops this job alone; at
# shutdown the lifespan stops every job at once (core/jobs.py `stop_all`).
start = JOB.start
stop = JOB.stop
