"""Run fixed Core statements straight on the DBAPI cursor: the money hot path's executor.

A `Prepared` wraps one SQLAlchemy Core statement (the single source of its SQL). For each
dialect it meets, it compiles the statement once and keeps the SQL string, the order of
its parameters and the dialect's type processors (e.g. UUIDs as 32-hex text and
datetimes as text on SQLite, native values on asyncpg). `run()` then only converts the
parameters, calls `cursor.execute` on the connection's DBAPI connection and converts the
result rows: none of `Connection.execute`'s per-call work (cache-keying the statement,
building an execution context and a `Result`) happens, which is most of the CPU of a
short statement.

Rules for statements used here: every parameter is a named `bindparam` (or carries its
own value); no expanding (`IN` list) or literal-execute parameters; statements needing
Python-side column defaults must list every value explicitly. Rows come back as plain
tuples in the order of the statement's columns (or `RETURNING` columns).

It runs inside the caller's transaction on a synchronous `Connection`: the ledger's
SQLite writer thread, or `AsyncConnection.run_sync` on asyncpg (the adapter's cursor
awaits there). DBAPI errors are raised wrapped as SQLAlchemy's `DBAPIError` subclasses,
as `Connection.execute` would, and a disconnect invalidates the connection and its pool's
older ones as `Connection.execute` does (tests/integration/test_connection_loss.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc, func, literal_column, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from banking.core.db import discard_connection

Processor = Callable[[Any], Any]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Plan:
    """One statement compiled for one dialect."""

    sql: str
    # Per positional parameter: its name, bind processor, and own value (or _MISSING).
    binds: tuple[tuple[str, Processor | None, Any], ...]
    # Per result column: its result processor (None: value as the driver gives it).
    results: tuple[Processor | None, ...]
    converts_results: bool
    # The columns that have one, as (index, processor): only they are touched per row.
    conversions: tuple[tuple[int, Processor], ...] = ()


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("prepared statements take no expanding or literal-execute parameters")
    if not compiled.positional or compiled.positiontup is None:
        raise ValueError(f"dialect {dialect.name} does not use positional parameters")
    binds = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        own = _MISSING if bind.required or bind.callable is not None else bind.value
        binds.append((name, _bind_processor(bind.type, dialect), own))
    columns = getattr(statement, "exported_columns", ())
    results = tuple(_result_processor(column.type, dialect) for column in columns)
    return _Plan(
        sql=compiled.string,
        binds=tuple(binds),
        results=results,
        converts_results=any(processor is not None for processor in results),
        conversions=tuple(
            (index, processor) for index, processor in enumerate(results) if processor is not None
        ),
    )


class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor."""

    __slots__ = ("_last", "_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        if not isinstance(statement, ClauseElement):  # pragma: no cover - programming error
            raise TypeError("a Core statement is required")
        self.statement = statement
        self._plans: dict[tuple[type[Dialect], str], _Plan] = {}
        self._last: tuple[Dialect, _Plan] | None = None

    def plan(self, dialect: Dialect) -> _Plan:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        key = (type(dialect), dialect.paramstyle)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _compile(self.statement, dialect)
        self._last = (dialect, plan)
        return plan

    def sql(self, dialect: Dialect) -> str:
        """The SQL this statement runs as on `dialect` (for tests and diagnostics)."""
        return self.plan(dialect).sql

    def run(
        self, connection: Connection, params: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Any, ...]], int]:
        """Execute in the connection's transaction: (result rows, DBAPI rowcount)."""
        plan = self.plan(connection.dialect)
        values = params or {}
        args = [
            (value if processor is None or value is None else processor(value))
            for name, processor, own in plan.binds
            for value in (values[name] if own is _MISSING else values.get(name, own),)
        ]
        if not connection.in_transaction():
            connection.begin()
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(plan.sql, args)
            raw = cursor.fetchall() if cursor.description is not None else []
            rowcount = cursor.rowcount
        except connection.dialect.loaded_dbapi.Error as error:
            # As `Connection.execute` would: a dead connection goes, with its pool's
            # older ones, instead of going back to the pool for the next request.
            lost = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                discard_connection(connection, error)
            raise exc.DBAPIError.instance(
                plan.sql,
                args,
                error,
                connection.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=lost,
                dialect=connection.dialect,
            ) from error
        finally:
            cursor.close()
        if not plan.converts_results:
            return [tuple(row) for row in raw], rowcount
        conversions = plan.conversions
        rows = []
        for row in raw:
            converted = list(row)
            for index, processor in conversions:
                value = converted[index]
                if value is not None:
                    converted[index] = processor(value)
            rows.append(tuple(converted))
        return rows, rowcount

    def all(
        self, connection: Connection, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return self.run(connection, params)[0]

    def first(
        self, connection: Connection, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        rows = self.run(connection, params)[0]
        return rows[0] if rows else None

    def rowcount(self, connection: Connection, params: Mapping[str, Any] | None = None) -> int:
        return self.run(connection, params)[1]


Part = Executable | tuple[Executable, Executable]
"""A DML statement of `Writes`: a Core INSERT/UPDATE/DELETE, or for a textual statement
the pair (statement, the same with RETURNING)."""


class Writes:
    """Several INSERT/UPDATE statements run as one unit of the caller's transaction.

    `run` answers how many rows each part wrote, in order. On PostgreSQL the parts become
    data-modifying CTEs of one statement (one round trip; constraints are checked at its
    end, so a part may reference a row another part inserts), each counted through its
    RETURNING rows; elsewhere they run one after the other and the driver's rowcount
    counts them (without RETURNING, which costs more on SQLite). The parts' parameter
    names must differ (SQLAlchemy refuses two parameters of one name).
    """

    __slots__ = ("_combined", "_parts")

    def __init__(self, *parts: Part) -> None:
        plain: list[Executable] = []
        ctes = []
        for index, part in enumerate(parts):
            if isinstance(part, tuple):
                statement, returning = part
            else:
                statement = part
                returning = part.returning(literal_column("1"))  # type: ignore[attr-defined]
            plain.append(statement)
            ctes.append(returning.cte(f"write_{index}"))  # type: ignore[attr-defined]
        self._parts = tuple(Prepared(statement) for statement in plain)
        self._combined = Prepared(
            select(*(select(func.count()).select_from(cte).scalar_subquery() for cte in ctes))
        )

    def run(self, connection: Connection, params: Mapping[str, Any]) -> tuple[int, ...]:
        if connection.dialect.name == "postgresql":
            row = self._combined.first(connection, params)
            assert row is not None
            return tuple(int(count) for count in row)
        return tuple(part.rowcount(connection, params) for part in self._parts)
