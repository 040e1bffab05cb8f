"""Database engine, per-request sessions and write transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` (an acknowledged write survives power
loss), foreign keys on and a busy timeout. Its write transactions start with
`BEGIN IMMEDIATE` and are serialized inside the process by one asyncio lock, so writers
queue in Python instead of spinning on "database is locked". PostgreSQL uses asyncpg with
a fixed-size pool (no overflow: every new connection forks a backend).

A lost database connection (a restart, a failover, a network cut) is never reused: a
connection the driver knows is closed is replaced at check-out (`discard_dead_on_checkout`,
no round trip), and an error that shows the server is gone invalidates every connection
of that pool opened before it (`discard_connection`), so the next request connects
afresh, to the new primary when `DATABASE_URL` lists several hosts. Such errors are
recognised by `is_connection_lost` and answered 503 `database_unavailable`
(tests/integration/test_connection_loss.py, tests/ha/).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Uuid, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from banking.core.config import Settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only gives AUTOINCREMENT to INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        # SQLite stores text; keep it naive-UTC so lexical order equals time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stamp: dt.datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC)


def _dashed(value: str) -> str:
    """SQLite's 32 stored hex digits as the API writes a UUID (8-4-4-4-12, lower case)."""
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}".lower()


def _sqlite_json_time(value: str) -> str | dt.datetime:
    """SQLite's stored naive-UTC text (`2026-03-01 09:00:00.250000`, always six digits of
    microseconds) as pydantic writes the aware time: `T`, no fraction when it is zero,
    `Z`. Any other stored form is parsed instead."""
    if len(value) == 26 and value[10] == " " and value[19] == ".":
        if value.endswith(".000000"):
            return f"{value[:10]}T{value[11:19]}Z"
        return f"{value[:10]}T{value[11:]}Z"
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _text(value: Any) -> str:
    return str(value)


class JsonUuid(TypeDecorator[str]):
    """A UUID column read as the text a JSON answer carries (`type_coerce(column,
    JsonUuid())`), for rows that go straight into an answer: on SQLite, cutting the stored
    hex costs a fifth of building a `uuid.UUID` that the encoder then turns back into text
    (tests/unit/test_json_values.py holds both to pydantic's output)."""

    impl = Uuid
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        return _dashed if dialect.name == "sqlite" else _text


class JsonTime(TypeDecorator[Any]):
    """A `UTCDateTime` column read for a JSON answer: on SQLite the text pydantic would
    write for the time, without parsing it (tests/unit/test_json_values.py); on
    PostgreSQL the driver's aware datetime as it comes, without `UTCDateTime`'s
    `astimezone(UTC)`: it relies on asyncpg handing timestamptz over in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _sqlite_json_time if dialect.name == "sqlite" else None


class FairGate:
    """A first-come, first-served lock usable from any thread.

    SQLite allows one writer at a time; in-process writers on different connections (the
    async engine and the ledger's writer) take turns here instead of polling
    SQLite's busy handler, which can starve a waiter under continuous load.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def acquire(self) -> None:
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._condition.wait()

    def release(self) -> None:
        with self._condition:
            self._serving += 1
            self._condition.notify_all()


async def acquire_gate(gate: FairGate) -> None:
    """Wait for `gate` without blocking the event loop; never leak it on cancellation."""
    acquiring = asyncio.ensure_future(asyncio.to_thread(gate.acquire))
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        # The thread keeps waiting and will get its turn: hand it straight back.
        acquiring.add_done_callback(
            lambda done: gate.release() if not done.cancelled() and not done.exception() else None
        )
        raise


# Set while a task is inside `write_transaction` on SQLite: the ledger's writer
# needs the same gate, so waiting for it there would deadlock (it refuses instead).
IN_WRITE_TRANSACTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "in_write_transaction", default=False
)


class Database:
    """The engine, a session factory and (SQLite) the in-process writer lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, autoflush=False, info={"db": self}
        )
        self.write_lock = asyncio.Lock()
        self.sqlite_gate = FairGate()
        # Where the ledger reads the time; the app points it at `app.state.clock`.
        self.clock: Callable[[], dt.datetime] = utcnow
        self._probe_engine: AsyncEngine | None = None
        # Closers of what other modules keep per database (the read path's connections,
        # core/reads.py), run by `dispose`: whoever disposes a database closes them too.
        self.on_dispose: list[Callable[[], Awaitable[None]]] = []

    def probe_engine(self) -> AsyncEngine:
        """An engine for health checks. PostgreSQL: no pool, each check opens a connection
        of its own, so a busy request pool cannot make a healthy instance look dead and a
        dead server cannot hide behind a pooled connection. SQLite: the main engine."""
        if self.is_sqlite:
            return self.engine
        if self._probe_engine is None:
            self._probe_engine = create_async_engine(
                self.settings.database_url,
                poolclass=NullPool,
                hide_parameters=True,
                connect_args={"timeout": self.settings.db_connect_timeout_s},
            )
        return self._probe_engine

    async def dispose(self) -> None:
        closers, self.on_dispose = self.on_dispose, []
        for close in closers:
            await close()
        await self.engine.dispose()
        if self._probe_engine is not None:
            await self._probe_engine.dispose()


# PostgreSQL connections for short reads (core/reads.py): each is held for one round trip.
READ_POOL_MAX = 8


def connections_per_process(settings: Settings) -> int:
    """PostgreSQL connections one API process may hold at once: the main pool
    (`DB_POOL_SIZE`) plus the read pool (core/reads.py: `DB_POOL_SIZE`, at least 2, at
    most 8). The README's sizing uses this; `tests/integration/test_pool_sizing.py`
    checks a loaded process stays within it."""
    return settings.db_pool_size + max(2, min(settings.db_pool_size, READ_POOL_MAX))


def make_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url,
            connect_args={"timeout": settings.db_busy_timeout_ms / 1000},
            pool_size=max(2, min(settings.db_pool_size, 8)),
            max_overflow=0,
            # Error messages must not carry bound values (password hashes, token digests).
            hide_parameters=True,
        )
        configure_sqlite(engine.sync_engine, settings.db_busy_timeout_ms)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"timeout": settings.db_connect_timeout_s},
    )
    discard_dead_on_checkout(engine.sync_engine)
    return engine


# SQLSTATEs meaning "this server cannot serve us now": connection exceptions (class 08),
# shut down or starting up (57P01-57P03), read-only (25006: a standby, or a former
# primary after a failover).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "25006")


def is_connection_lost(error: BaseException) -> bool:
    """True when `error` (or what caused it) shows the database cannot be reached or the
    connection died: the request may be retried once a server answers again."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror):
            return True
        if isinstance(current, sa_exc.TimeoutError):  # no pooled connection came free
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        name = type(current).__name__
        if name == "TargetServerAttributeNotMatched":  # no host is a primary (yet)
            return True
        if name == "InterfaceError" and "closed" in str(current):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            pending.append(current.orig)
        pending.extend((current.__cause__, current.__context__))
    return False


def discard_dead_on_checkout(engine: Engine) -> None:
    """Replace, at check-out, a pooled asyncpg connection the driver already knows is
    closed (its server went away while it sat in the pool), and every connection of the
    pool opened before it. Costs no round trip, unlike `pool_pre_ping`."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "_connection", None)
        if driver is not None and driver.is_closed():
            raise sa_exc.InvalidatePoolError()


def discard_connection(connection: Connection, error: BaseException) -> None:
    """After a disconnect error on `connection` outside `Connection.execute` (which does
    this itself): drop it and every connection its pool opened before now."""
    if connection.invalidated:
        return
    connection.engine.pool._invalidate(connection.connection, error)
    connection.invalidate(error)


def on_connection(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """`fn` on a connection of `engine`, checked out and back in around it (run it in one
    greenlet with `greenlet_spawn` to pay for one switch instead of one per step)."""
    with engine.connect() as connection:
        return fn(connection)


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """Pragmas and `BEGIN [IMMEDIATE]` control for every connection of a SQLite engine."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            f"busy_timeout={busy_timeout_ms}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("sqlite_autocommit", False):
            # Each statement is its own transaction (see core/reads.py).
            return
        immediate = options.get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def database_of(session: AsyncSession) -> Database:
    db = session.info.get("db")
    if not isinstance(db, Database):  # pragma: no cover - a programming error
        raise RuntimeError("session was not created by Database.sessionmaker")
    return db


@contextlib.asynccontextmanager
async def write_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Run the block as one write transaction, committed before the block's caller returns.

    Any read transaction the request already started (the auth check) is ended first.
    On SQLite the transaction begins IMMEDIATE under the process-wide writer lock.
    """
    if session.in_transaction():
        await session.commit()
    db = database_of(session)
    if db.is_sqlite:
        async with db.write_lock:
            # Take turns with the ledger's writer (see FairGate).
            await acquire_gate(db.sqlite_gate)
            marker = IN_WRITE_TRANSACTION.set(True)
            try:
                await session.connection(execution_options={"sqlite_immediate": True})
                try:
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
            finally:
                IN_WRITE_TRANSACTION.reset(marker)
                db.sqlite_gate.release()
    else:
        async with session.begin():
            yield session


async def session_scope(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.sessionmaker() as session:
        yield session
