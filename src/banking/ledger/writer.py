"""Where the ledger's write transactions run.

`run(fn)` runs `fn(connection)` (a synchronous SQLAlchemy `Connection`) in a write
transaction and returns only after that transaction committed.

PostgreSQL: a pooled asyncpg connection runs the function through
`AsyncConnection.run_sync`; row locks (`SELECT ... FOR UPDATE`) serialise what must be.

SQLite: one dedicated thread owns one stdlib-sqlite3 connection and runs the whole
function in one hand-off, instead of one thread hand-off per statement through aiosqlite.
It also shares commits: the jobs waiting in its queue when it starts a transaction (up
to `ledger_group_commit_max`) each run in their own SAVEPOINT inside one
`BEGIN IMMEDIATE ... COMMIT`, so one fsync serves many movements (group commit). A job
that fails is rolled back to its savepoint alone. Every caller is answered only after
the COMMIT returned (and if the COMMIT fails, every job of the batch fails with it), so
an acknowledged movement is durable (WAL, `synchronous=FULL`).

Other SQLite writers in the process (sign-up, login, ...) use the async engine; the
writer thread and they take turns through `Database.sqlite_gate`, a first-come,
first-served lock, so neither can starve the other into "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Histogram
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import greenlet_spawn

from banking.core.db import IN_WRITE_TRANSACTION, Database, configure_sqlite
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


def _on_connection(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as connection:
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
        result: T = await greenlet_spawn(_on_connection, self.db.engine.sync_engine, fn)
        return result

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class _Job:
    fn: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    # The waiting request may have been cancelled (client gone); its job still committed.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _settle_all(answers: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in answers:
        _settle(future, value, error)


class SqliteWriter(Writer):
    """SQLite: one thread, one connection, group commit (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batch_max = db.settings.ledger_group_commit_max
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._engine: Engine | None = None

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is not None:
                return
            url = make_url(self.db.settings.database_url).set(drivername="sqlite+pysqlite")
            engine = create_engine(
                url,
                poolclass=StaticPool,
                connect_args={
                    "timeout": self.db.settings.db_busy_timeout_ms / 1000,
                    "check_same_thread": False,
                },
            )
            configure_sqlite(engine, self.db.settings.db_busy_timeout_ms)
            self._engine = engine
            self._thread = threading.Thread(
                target=self._serve, args=(engine,), name="ledger-writer", daemon=True
            )
            self._thread.start()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if IN_WRITE_TRANSACTION.get():
            raise RuntimeError(
                "the ledger runs its own transaction: call it outside write_transaction"
            )
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    def _serve(self, engine: Engine) -> None:
        with engine.connect() as raw:
            connection = raw.execution_options(sqlite_immediate=True)
            while True:
                job = self._queue.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < self.batch_max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._run_batch(connection, batch)
                if stop:
                    return

    def _run_batch(self, connection: Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        gate = self.db.sqlite_gate
        gate.acquire()
        started = time.perf_counter()
        try:
            transaction = connection.begin()
            try:
                # Savepoints straight on the driver: through SQLAlchemy each costs a
                # statement compile and execution context, more than the SQL itself.
                driver = connection.connection.dbapi_connection
                assert driver is not None
                for job in batch:
                    driver.execute(_SAVEPOINT)
                    try:
                        value = job.fn(connection)
                    except BaseException as exc:
                        driver.execute(_ROLLBACK_TO_SAVEPOINT)
                        driver.execute(_RELEASE_SAVEPOINT)
                        outcomes.append((None, exc))
                    else:
                        driver.execute(_RELEASE_SAVEPOINT)
                        outcomes.append((value, None))
                transaction.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    transaction.rollback()
                raise
        except BaseException as exc:
            log.error("ledger_batch_failed", error_type=type(exc).__name__, jobs=len(batch))
            outcomes = [(None, exc) for _ in batch]
        finally:
            gate.release()
        BATCH_SIZE.observe(len(batch))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        # One wake-up per event loop for the whole batch, not one per job.
        answers: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, (value, error) in zip(batch, outcomes, strict=True):
            answers.setdefault(job.loop, []).append((job.future, value, error))
        for loop, settled in answers.items():
            loop.call_soon_threadsafe(_settle_all, settled)

    async def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join, 30)
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
