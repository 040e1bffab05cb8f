"""Short reads on the request path (the session check, a balance) at the lowest cost.

`run(db, fn)` runs `fn(connection)` on a synchronous SQLAlchemy `Connection` and returns
its result. The function must be one short indexed read (ideally one statement).

SQLite: the read runs right on the calling thread (the event loop), on a connection of
its own kept open for that thread, in autocommit mode: each statement is its own read
transaction (no BEGIN, no ROLLBACK) and sees every commit that returned before it began.
An indexed point read takes a few tens of microseconds, less than handing it to another
thread and back would cost; in WAL mode a reader does not wait for the ledger's writer.

PostgreSQL: a pooled asyncpg connection in autocommit mode, so a one-statement read is
one round trip (no BEGIN, no ROLLBACK).
"""

from __future__ import annotations

import abc
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn

from banking.core.db import Database, configure_sqlite, discard_dead_on_checkout, on_connection

T = TypeVar("T")
# PostgreSQL connections for short reads: they are held for one round trip each.
READ_POOL_MAX = 8


class Reader(abc.ABC):
    """Where short reads run: one per database (see `reader_for`)."""

    @abc.abstractmethod
    async def run(self, fn: Callable[[Connection], T]) -> T: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class PostgresReader(Reader):
    """PostgreSQL: a small pool of its own whose connections are always in autocommit
    mode, so that no isolation level is set and reset around every read."""

    def __init__(self, db: Database) -> None:
        settings = db.settings
        self.async_engine: AsyncEngine = create_async_engine(
            settings.database_url,
            pool_size=max(2, min(settings.db_pool_size, READ_POOL_MAX)),
            max_overflow=0,
            pool_recycle=1800,
            hide_parameters=True,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": settings.db_connect_timeout_s},
        )
        discard_dead_on_checkout(self.async_engine.sync_engine)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        # Check-out, the read and check-in in one greenlet, not one per step.
        result: T = await greenlet_spawn(on_connection, self.async_engine.sync_engine, fn)
        return result

    async def close(self) -> None:
        await self.async_engine.dispose()


class SqliteReader(Reader):
    """SQLite: inline autocommit reads, one connection per thread (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        settings = db.settings
        url = make_url(settings.database_url).set(drivername="sqlite+pysqlite")
        self.engine: Engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "timeout": settings.db_busy_timeout_ms / 1000,
                "check_same_thread": False,
            },
            hide_parameters=True,
        )
        configure_sqlite(self.engine, settings.db_busy_timeout_ms)
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.engine.connect().execution_options(sqlite_autocommit=True)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    async def run(self, fn: Callable[[Connection], T]) -> T:
        connection = self._connection()
        try:
            return fn(connection)
        except DBAPIError:
            # A broken connection is not reused: the next read opens a new one.
            self._local.connection = None
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)
            connection.invalidate()
            raise
        finally:
            if connection.in_transaction():
                # Ends SQLAlchemy's bookkeeping only: no BEGIN was sent, nothing is open.
                connection.rollback()

    async def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
        self.engine.dispose()


_READERS: weakref.WeakKeyDictionary[Database, Reader] = weakref.WeakKeyDictionary()


def reader_for(db: Database) -> Reader:
    reader = _READERS.get(db)
    if reader is None:
        reader = SqliteReader(db) if db.is_sqlite else PostgresReader(db)
        _READERS[db] = reader
    return reader


async def run(db: Database, fn: Callable[[Connection], T]) -> T:
    """Run the read `fn(connection)` (see the module docstring)."""
    return await reader_for(db).run(fn)


async def close(db: Database) -> None:
    reader = _READERS.pop(db, None)
    if reader is not None:
        await reader.close()


async def stop(app: FastAPI) -> None:
    """Shutdown hook."""
    await close(app.state.db)
