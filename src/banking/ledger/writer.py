"""Where the ledger's write transactions run.

`run(fn)` runs `fn(connection)` (a synchronous SQLAlchemy `Connection`) in a write
transaction and returns only after that transaction committed.

PostgreSQL: a pooled asyncpg connection runs the function through
`AsyncConnection.run_sync`; row locks (`SELECT ... FOR UPDATE`) serialise what must be.

SQLite: one connection, and the jobs run on the event loop itself, in batches (group
commit): the jobs waiting when a transaction starts (up to `ledger_group_commit_max`)
each run in their own SAVEPOINT inside one `BEGIN IMMEDIATE ... COMMIT`, so one fsync
serves many movements. A job that fails is rolled back to its savepoint alone. Only
BEGIN IMMEDIATE (which may wait for another process's write lock) and COMMIT (the
fsync) go to a thread; while a batch commits, the loop serves requests and the next
batch gathers. A job is a few short statements under a write lock already held, so it
never waits: running it inline costs less than any thread hand-off, and keeps the
interpreter lock with one thread instead of passing it to and fro. Every caller is
answered only after the COMMIT returned (and if the COMMIT fails, every job of the
batch fails with it), so an acknowledged movement is durable (WAL, `synchronous=FULL`).

Other SQLite writers in the process (sign-up, login, ...) use the async engine; the
ledger's writer and they take turns through `Database.sqlite_gate`, a first-come,
first-served lock, so neither can starve the other into "database is locked".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Histogram
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn

from banking.core.db import (
    IN_WRITE_TRANSACTION,
    Database,
    acquire_gate,
    configure_sqlite,
    on_connection,
)
from banking.core.logging import get_logger

T = TypeVar("T")
log = get_logger("banking.ledger.writer")
BATCH_SIZE = Histogram(
    "banking_ledger_commit_batch_size",
    "Movements sharing one SQLite commit (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_SECONDS = Histogram(
    "banking_ledger_commit_batch_seconds",
    "Time from BEGIN to the end of COMMIT of one group-commit batch.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


# One job at a time runs in the savepoint, so one name serves all.
_SAVEPOINT = "SAVEPOINT ledger_job"
_ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT ledger_job"
_RELEASE_SAVEPOINT = "RELEASE SAVEPOINT ledger_job"


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as connection, connection.begin():
        return fn(connection)


class Writer:
    """PostgreSQL (and the fallback): the function runs on a pooled async connection.

    Check-out, BEGIN, the function, COMMIT and check-in all run in one greenlet (what
    `AsyncConnection.run_sync` does for the function alone), instead of one per step.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(self, fn: Callable[[Connection], T]) -> T:
        result: T = await greenlet_spawn(_in_transaction, self.db.engine.sync_engine, fn)
        return result

    async def read(self, fn: Callable[[Connection], T]) -> T:
        result: T = await greenlet_spawn(on_connection, self.db.engine.sync_engine, fn)
        return result

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class _Job:
    fn: Callable[[Connection], Any]
    future: asyncio.Future[Any]


class SqliteWriter(Writer):
    """SQLite: one connection, jobs run on the event loop, group commit (module docstring)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batch_max = db.settings.ledger_group_commit_max
        self._pending: collections.deque[_Job] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._engine: Engine | None = None
        self._connection: Connection | None = None
        # BEGIN IMMEDIATE (which may wait for another process's write lock) and COMMIT
        # (the fsync) run here, off the event loop.
        self._io = ThreadPoolExecutor(1, thread_name_prefix="ledger-commit")

    def _connect(self) -> Connection:
        if self._connection is None:
            url = make_url(self.db.settings.database_url).set(drivername="sqlite+pysqlite")
            engine = create_engine(
                url,
                poolclass=StaticPool,
                connect_args={
                    "timeout": self.db.settings.db_busy_timeout_ms / 1000,
                    "check_same_thread": False,
                },
                hide_parameters=True,
            )
            configure_sqlite(engine, self.db.settings.db_busy_timeout_ms)
            self._engine = engine
            self._connection = engine.connect().execution_options(sqlite_immediate=True)
        return self._connection

    def _ensure_pump(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_running():
                raise RuntimeError("the ledger's SQLite writer serves one event loop")
            # First use, or the loop it served has ended (a CLI command, a test runner).
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._pump = None
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._serve(), name="ledger-writer")
        assert self._wakeup is not None
        return self._wakeup

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if IN_WRITE_TRANSACTION.get():
            raise RuntimeError(
                "the ledger runs its own transaction: call it outside write_transaction"
            )
        if self._closing:
            raise RuntimeError("the ledger's writer is closed")
        wakeup = self._ensure_pump()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(fn, future))
        wakeup.set()
        return await future

    async def _serve(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = [
                    self._pending.popleft() for _ in range(min(self.batch_max, len(self._pending)))
                ]
                await self._run_batch(batch)
            if self._closing:
                return

    async def _run_batch(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        connection = self._connect()
        outcomes: list[tuple[Any, BaseException | None]] = []
        gate = self.db.sqlite_gate
        await acquire_gate(gate)
        started = time.perf_counter()
        try:
            transaction = await loop.run_in_executor(self._io, connection.begin)
            try:
                # The jobs run here, on the event loop: each is a few short statements
                # under the write lock this transaction holds, so nothing waits; handing
                # every job to a thread would cost more than the job itself. Savepoints
                # go straight to the driver: through SQLAlchemy each would cost a
                # statement compile and an execution context, more than the SQL itself.
                driver = connection.connection.dbapi_connection
                assert driver is not None
                for job in batch:
                    driver.execute(_SAVEPOINT)
                    try:
                        value = job.fn(connection)
                    except Exception as exc:
                        driver.execute(_ROLLBACK_TO_SAVEPOINT)
                        driver.execute(_RELEASE_SAVEPOINT)
                        outcomes.append((None, exc))
                    else:
                        driver.execute(_RELEASE_SAVEPOINT)
                        outcomes.append((value, None))
                await loop.run_in_executor(self._io, transaction.commit)
            except BaseException:
                with contextlib.suppress(Exception):
                    await loop.run_in_executor(self._io, transaction.rollback)
                raise
        except Exception as exc:
            log.error("ledger_batch_failed", error_type=type(exc).__name__, jobs=len(batch))
            outcomes = [(None, exc) for _ in batch]
        finally:
            gate.release()
        BATCH_SIZE.observe(len(batch))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        for job, (value, error) in zip(batch, outcomes, strict=True):
            # The waiting request may have been cancelled (client gone); its job committed.
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

    async def close(self) -> None:
        self._closing = True
        pump = self._pump
        if pump is not None and self._loop is asyncio.get_running_loop():
            assert self._wakeup is not None
            self._wakeup.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(pump, 30)
        await asyncio.to_thread(self._io.shutdown, True)
        if self._connection is not None:
            self._connection.close()
        if self._engine is not None:
            self._engine.dispose()


_WRITERS: weakref.WeakKeyDictionary[Database, Writer] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> Writer:
    writer = _WRITERS.get(db)
    if writer is None:
        writer = SqliteWriter(db) if db.is_sqlite else Writer(db)
        _WRITERS[db] = writer
    return writer


async def close_writer(db: Database) -> None:
    writer = _WRITERS.pop(db, None)
    if writer is not None:
        await writer.close()
