"""The background task that chains new audit rows four times a second.

It runs in every API process; on PostgreSQL an advisory lock inside `seal_pending` lets
only one process seal at a time. It first checks with a cheap read whether anything is
unsealed, so an idle SQLite service does not take the writer lock at every tick. Short
ticks and batches of at most `SEAL_BATCH` rows keep each seal brief: a long one would
hold SQLite's write lock, and the event loop, while money is waiting to commit. Errors
are logged and retried on the next tick; they never stop the task or the application.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from sqlalchemy import select

from banking.audit import service as audit
from banking.audit.models import AuditEvent
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


async def run(db: Database, interval_s: float = SEAL_INTERVAL_S) -> None:
    while True:
        try:
            await seal_once(db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("audit_seal_failed", error_type=type(exc).__name__)
        await asyncio.sleep(interval_s)


async def start(app: FastAPI) -> None:
    """Start-up hook."""
    app.state.audit_sealer = asyncio.create_task(run(app.state.db), name="audit-sealer")


async def stop(app: FastAPI) -> None:
    """Shutdown hook: cancel the task and wait for it (a half-done seal rolls back)."""
    task: asyncio.Task[None] | None = getattr(app.state, "audit_sealer", None)
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
