"""Prepared statements on the DBAPI cursor store and read values exactly as SQLAlchemy does.

Runs on the test database's dialect (aiosqlite or asyncpg through `run_sync`) and on
the stdlib sqlite3 dialect the ledger's SQLite writer uses.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from banking.core.db import UTCDateTime
from banking.core.prepared import Prepared, Writes

METADATA = MetaData()
THING = Table(
    "prepared_thing",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=True),
    Column("at", UTCDateTime, nullable=True),
    Column("day", Date, nullable=True),
    Column("count", BigInteger, nullable=True),
    Column("small", Integer, nullable=True),
    Column("name", String(40), nullable=True),
)
COLUMNS = [column.name for column in THING.columns]
INSERT = Prepared(
    insert(THING).values({name: bindparam(name, type_=THING.c[name].type) for name in COLUMNS})
)
SELECT = Prepared(select(THING).where(THING.c.id == bindparam("id")))
BY_OWNER = Prepared(
    select(THING.c.id, THING.c.name)
    .where(THING.c.owner_id == bindparam("owner_id"), THING.c.name != "skip")
    .order_by(THING.c.id)
)
BUMP = Prepared(
    update(THING)
    .where(THING.c.id == bindparam("id"))
    .values(count=THING.c.count + bindparam("by", type_=BigInteger))
    .returning(THING.c.count, THING.c.at)
)
RENAME = Prepared(
    update(THING).where(THING.c.owner_id == bindparam("owner_id")).values(name=bindparam("name"))
)
RAW = Prepared(text("SELECT count(*) FROM prepared_thing WHERE name = :name"))

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def _values(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "owner_id": uuid.uuid4(),
        "at": NOW,
        "day": dt.date(2026, 2, 28),
        "count": 2**40,
        "small": -7,
        "name": "ünïcode",
        **overrides,
    }


def _round_trips(connection: Connection) -> None:
    METADATA.create_all(connection)
    full = _values()
    empty = _values(owner_id=None, at=None, day=None, count=None, small=None, name=None)
    # Written raw, read by SQLAlchemy: the stored form is SQLAlchemy's own.
    for values in (full, empty):
        assert INSERT.rowcount(connection, values) == 1
        stored = connection.execute(select(THING).where(THING.c.id == values["id"])).one()
        assert tuple(stored) == tuple(values[name] for name in COLUMNS)
    # Written by SQLAlchemy, read raw; a non-UTC datetime is read back as the same instant.
    other = _values(at=NOW.astimezone(PLUS_TWO), name="skip", owner_id=full["owner_id"])
    connection.execute(insert(THING).values(other))
    row = SELECT.first(connection, {"id": other["id"]})
    assert row is not None
    assert row == tuple(other[name] for name in COLUMNS)
    assert row[2].tzinfo is dt.UTC
    assert isinstance(row[0], uuid.UUID)
    assert isinstance(row[3], dt.date)
    assert SELECT.first(connection, {"id": empty["id"]}) == tuple(empty[name] for name in COLUMNS)
    assert SELECT.first(connection, {"id": uuid.uuid4()}) is None
    # A statement's own literal ("skip") is bound without being passed.
    assert BY_OWNER.all(connection, {"owner_id": full["owner_id"]}) == [(full["id"], full["name"])]
    # RETURNING and rowcount.
    # (A DBAPI rowcount is only reliable without RETURNING.)
    assert BUMP.all(connection, {"id": full["id"], "by": 5}) == [(2**40 + 5, NOW)]
    assert BUMP.all(connection, {"id": uuid.uuid4(), "by": 1}) == []
    assert RENAME.rowcount(connection, {"owner_id": full["owner_id"], "name": "x"}) == 2
    assert RENAME.rowcount(connection, {"owner_id": uuid.uuid4(), "name": "x"}) == 0
    assert RAW.all(connection, {"name": "x"}) == [(2,)]
    # Errors come wrapped like Connection.execute's, without the bound values.
    with pytest.raises(IntegrityError) as raised:
        INSERT.run(connection, full)
    assert str(full["id"].hex) not in str(raised.value)
    with pytest.raises(KeyError):
        SELECT.run(connection, {})


_TEXT_INSERT = "INSERT INTO prepared_thing (id, name) VALUES (:t_id, :t_name)"
WRITES = Writes(
    insert(THING).values(id=bindparam("a_id", type_=Uuid), name=bindparam("a_name")),
    (
        text(_TEXT_INSERT).bindparams(bindparam("t_id", type_=Uuid)),
        text(_TEXT_INSERT + " RETURNING id")
        .bindparams(bindparam("t_id", type_=Uuid))
        .columns(THING.c.id),
    ),
    update(THING).where(THING.c.name == bindparam("u_name")).values(small=bindparam("u_small")),
)


def _writes(connection: Connection) -> None:
    METADATA.create_all(connection)
    INSERT.run(connection, _values(name="old"))
    INSERT.run(connection, _values(name="old"))
    first, second = uuid.uuid4(), uuid.uuid4()
    params = {"a_id": first, "a_name": "a", "t_id": second, "t_name": "t", "u_name": "old"}
    # One statement on PostgreSQL: the UPDATE does not see the rows inserted beside it.
    assert WRITES.run(connection, {**params, "u_small": 3}) == (1, 1, 2)
    assert connection.execute(select(THING.c.id).where(THING.c.small == 3)).all() != []
    assert SELECT.first(connection, {"id": second}) is not None
    assert WRITES.run(
        connection,
        {**params, "a_id": uuid.uuid4(), "t_id": uuid.uuid4(), "u_name": "none", "u_small": 4},
    ) == (1, 1, 0)
    with pytest.raises(IntegrityError):
        WRITES.run(connection, {**params, "u_small": 5})


async def test_writes_on_the_test_database(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.run_sync(_writes)
            await transaction.rollback()
    finally:
        await engine.dispose()


def test_writes_on_stdlib_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    try:
        with engine.begin() as connection:
            _writes(connection)
    finally:
        engine.dispose()


async def test_round_trip_on_the_test_database(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.run_sync(_round_trips)
            await transaction.rollback()
    finally:
        await engine.dispose()


def test_round_trip_on_stdlib_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'prepared.db'}")
    try:
        with engine.begin() as connection:
            _round_trips(connection)
    finally:
        engine.dispose()


def test_each_dialect_compiles_once(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'once.db'}")
    statement = Prepared(select(THING.c.id).where(THING.c.name == bindparam("name")))
    try:
        plan: Callable[..., Any] = statement.plan
        assert plan(engine.dialect) is plan(engine.dialect)
        assert "?" in statement.sql(engine.dialect)
    finally:
        engine.dispose()


def test_expanding_parameters_are_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'expanding.db'}")
    statement = Prepared(select(THING.c.id).where(THING.c.id.in_(bindparam("ids", expanding=True))))
    try:
        with pytest.raises(ValueError, match="expanding"):
            statement.plan(engine.dialect)
    finally:
        engine.dispose()
