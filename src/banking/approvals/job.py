"""The approvals job: every minute each API process expires the pending approvals past
`APPROVAL_TTL_S`, releasing their holds (each one its own short transaction, the row
locked and its status checked again, so several processes never expire one twice).
A decision on a lapsed approval expires it too."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from banking.approvals import service as approvals
from banking.core.db import Database
from banking.core.logging import get_logger

log = get_logger("banking.approvals.job")
INTERVAL_S = 60.0


async def run(db: Database, interval_s: float = INTERVAL_S) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = await approvals.expire_due(db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("approval_expiry_failed", error_type=type(exc).__name__)
        else:
            if expired:
                log.info("approvals_expired", approvals=expired)


async def start(app: FastAPI) -> None:
    app.state.approvals_job = asyncio.create_task(run(app.state.db), name="approvals-job")


async def stop(app: FastAPI) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "approvals_job", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
