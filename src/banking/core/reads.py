"""The read path's connection: every GET route's reads at the lowest cost.

`run(db, fn)` runs `fn(connection)` on a synchronous SQLAlchemy `Connection` checked out
once, and returns its result. The GET routes reach it through identity/deps.py `Read`
(the session check, then the route's statements, on the same connection). `fn` is a few
short indexed reads, and never writes. `rows`/`first` run a fixed statement compiled once
(core/prepared.py); `snapshot` makes a block of statements see one state of the database.

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
import collections
import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import greenlet_spawn

from banking.core.db import (
    READ_POOL_MAX,
    Database,
    configure_sqlite,
    discard_dead_on_checkout,
    on_connection,
)
from banking.core.prepared import Prepared

T = TypeVar("T")


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
            # SQLAlchemy's bookkeeping of a transaction, begun once and left open: no BEGIN
            # is sent (sqlite_autocommit), so each statement is still its own transaction,
            # and no read pays for a begin and a rollback event on top of its statements.
            connection.begin()
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

    async def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
        self.engine.dispose()


_READERS: weakref.WeakKeyDictionary[Database, Reader] = weakref.WeakKeyDictionary()


def reader_for(db: Database) -> Reader:
    """The database's reader, made at first use and closed by `close` or by
    `Database.dispose` (tests/integration/test_read_path_close.py)."""
    reader = _READERS.get(db)
    if reader is None:
        reader = SqliteReader(db) if db.is_sqlite else PostgresReader(db)
        _READERS[db] = reader
        db.on_dispose.append(functools.partial(close, db))
    return reader


# Fixed read statements (module-level, or built once per shape and cached by the caller),
# each compiled once and run on the DBAPI cursor (core/prepared.py): `Connection.execute`
# costs more CPU than a short indexed read spends in the database.
_PREPARED: dict[int, tuple[Executable, Prepared, Callable[[Iterable[Any]], Any]]] = {}


def _prepared(statement: Executable) -> tuple[Prepared, Callable[[Iterable[Any]], Any]]:
    entry = _PREPARED.get(id(statement))
    if entry is None or entry[0] is not statement:
        columns = getattr(statement, "selected_columns", ())
        names = [str(column.key or f"column_{index}") for index, column in enumerate(columns)]
        row = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
        entry = (statement, Prepared(statement), row._make)
        _PREPARED[id(statement)] = entry
    return entry[1], entry[2]


def rows(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[Any]:
    """The rows of a fixed read statement (attribute access by column name). Only for
    statements that live as long as the process: each is compiled and kept once."""
    prepared, make = _prepared(statement)
    return [make(values) for values in prepared.all(connection, params)]


def tuples(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """`rows` as plain tuples, in the order of the statement's columns: for a list whose
    rows are unpacked straight into its answer."""
    return _prepared(statement)[0].all(connection, params)


def first(
    connection: Connection, statement: Executable, params: Mapping[str, Any] | None = None
) -> Any:
    """The first row of a fixed read statement (see `rows`), or None."""
    prepared, make = _prepared(statement)
    values = prepared.first(connection, params)
    return None if values is None else make(values)


@contextlib.contextmanager
def snapshot(connection: Connection) -> Iterator[None]:
    """Inside `run`: the block's statements share one read-only snapshot (one
    transaction, ended by a rollback: nothing is written). PostgreSQL: REPEATABLE READ;
    SQLite: a deferred transaction, whose first read fixes what the block sees."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        connection.exec_driver_sql("BEGIN")
    try:
        yield
    finally:
        connection.exec_driver_sql("ROLLBACK")


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
