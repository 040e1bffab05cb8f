"""Short reads on the request path (the session check, a balance) at the lowest cost.

`run(db, fn)` runs `fn(connection)` on a synchronous SQLAlchemy `Connection` and returns
its result. The function should issue as few statements as it can (ideally one).

SQLite: a small pool of threads, each with its own stdlib-sqlite3 connection, runs the
whole function in one thread hand-off (through aiosqlite every statement, BEGIN and
ROLLBACK are one hand-off each). WAL lets these readers run while the ledger's writer
commits; a read sees every commit that returned before it began.

PostgreSQL: a pooled asyncpg connection in autocommit mode, so a one-statement read is
one round trip (no BEGIN, no ROLLBACK).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url

from banking.core.db import Database, configure_sqlite

T = TypeVar("T")
SQLITE_READER_THREADS = 2


class Reader:
    """PostgreSQL: autocommit reads on the application's pool."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(self, fn: Callable[[Connection], T]) -> T:
        async with self.db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            return await connection.run_sync(fn)

    async def close(self) -> None:
        return None


class SqliteReader(Reader):
    """SQLite: a few threads, one connection each (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        settings = db.settings
        url = make_url(settings.database_url).set(drivername="sqlite+pysqlite")
        self.engine: Engine = create_engine(
            url,
            pool_size=SQLITE_READER_THREADS,
            max_overflow=0,
            connect_args={
                "timeout": settings.db_busy_timeout_ms / 1000,
                "check_same_thread": False,
            },
            hide_parameters=True,
        )
        configure_sqlite(self.engine, settings.db_busy_timeout_ms)
        self.executor = ThreadPoolExecutor(SQLITE_READER_THREADS, thread_name_prefix="sqlite-read")

    def _call(self, fn: Callable[[Connection], T]) -> T:
        # Returning the connection ends its read transaction, so the next read sees
        # every newer commit.
        with self.engine.connect() as connection:
            return fn(connection)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._call, fn)

    async def close(self) -> None:
        await asyncio.to_thread(self.executor.shutdown, True)
        self.engine.dispose()


_READERS: weakref.WeakKeyDictionary[Database, Reader] = weakref.WeakKeyDictionary()


def reader_for(db: Database) -> Reader:
    reader = _READERS.get(db)
    if reader is None:
        reader = SqliteReader(db) if db.is_sqlite else Reader(db)
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
