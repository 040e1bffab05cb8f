"""The SQLite writer: group commit with a savepoint per job; PostgreSQL runs the same jobs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection

from banking.audit.models import AuditEvent
from banking.core.db import write_transaction
from banking.ledger.writer import writer_for
from tests.databases import ON_POSTGRES


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The background jobs off: a leading scheduler or dispatcher keeps a pool connection
    of its own, and these tests count the pool's connections."""
    return {
        "hold_sweep_interval_s": 0,
        "events_dispatch_interval_s": 0,
        "scheduler_interval_s": 0,
        "interest_job_interval_s": 0,
    }


class Boom(Exception):
    pass


def _write_marker(name: str, *, fail: bool) -> object:
    def job(connection: Connection) -> str:
        connection.execute(
            insert(AuditEvent).values(event_type=f"test.{name}", outcome="success", details="{}")
        )
        if fail:
            raise Boom(name)
        return name

    return job


def _count_markers(name: str) -> Callable[[Connection], int]:
    def job(connection: Connection) -> int:
        return int(
            connection.execute(
                select(func.count()).where(AuditEvent.event_type == f"test.{name}")
            ).scalar_one()
        )

    return job


class TestWriter:
    async def test_a_failing_job_is_rolled_back_alone_and_the_others_commit(
        self, app: FastAPI
    ) -> None:
        writer = writer_for(app.state.db)
        jobs = [_write_marker(f"job{index}", fail=index == 3) for index in range(8)]
        results = await asyncio.gather(
            *(writer.run(job) for job in jobs),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert [isinstance(result, Boom) for result in results] == [
            index == 3 for index in range(8)
        ]
        async with app.state.db.sessionmaker() as session:
            names = set(
                (
                    await session.execute(
                        select(AuditEvent.event_type).where(AuditEvent.event_type.like("test.%"))
                    )
                ).scalars()
            )
        assert names == {f"test.job{index}" for index in range(8) if index != 3}

    @pytest.mark.skipif(ON_POSTGRES, reason="the gate exists only for SQLite")
    async def test_calling_the_ledger_inside_write_transaction_fails_fast(
        self, app: FastAPI
    ) -> None:
        writer = writer_for(app.state.db)
        job = _write_marker("inside", fail=False)
        async with app.state.db.sessionmaker() as session:
            with pytest.raises(RuntimeError, match="outside write_transaction"):
                async with write_transaction(session):
                    # Fast: refused before queueing, not after waiting on the lock this
                    # transaction holds (that would deadlock until the timeout).
                    await asyncio.wait_for(writer.run(job), timeout=5)  # type: ignore[arg-type]
        # The job never ran, and the writer still serves the next caller.
        assert await writer.run(_count_markers("inside")) == 0
        after = _write_marker("after", fail=False)
        assert await writer.run(after) == "after"  # type: ignore[arg-type]
        assert await writer.run(_count_markers("after")) == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="cancels a statement running on PostgreSQL")
async def test_a_cancelled_job_rolls_back_and_gives_its_connection_back(app: FastAPI) -> None:
    db = app.state.db
    writer = writer_for(db)

    sleeping = threading.Event()

    def slow(connection: Connection) -> None:
        connection.execute(
            insert(AuditEvent).values(event_type="test.cancelled", outcome="success", details="{}")
        )
        sleeping.set()
        connection.execute(text("SELECT pg_sleep(2)"))

    task = asyncio.create_task(writer.run(slow))
    # Cancel once the job has written and its statement is about to run.
    assert await asyncio.to_thread(sleeping.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert db.engine.sync_engine.pool.checkedout() == 0
    count = await writer.run(
        lambda connection: connection.execute(
            select(func.count()).where(AuditEvent.event_type == "test.cancelled")
        ).scalar_one()
    )
    assert count == 0
