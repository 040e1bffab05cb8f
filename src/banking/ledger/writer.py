"""Where the ledger's write transactions run.

`run(fn)` runs `fn(connection)` in one write transaction and returns after the commit.
PostgreSQL: a pooled asyncpg connection, the function via `AsyncConnection.run_sync`.
SQLite: `BEGIN IMMEDIATE` under the process-wide writer lock (see core/db.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection

from banking.core.db import Database

T = TypeVar("T")


class Writer:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if self.db.is_sqlite:
            async with self.db.write_lock, self.db.engine.connect() as connection:
                await connection.execution_options(sqlite_immediate=True)
                async with connection.begin():
                    return await connection.run_sync(fn)
        async with self.db.engine.connect() as connection, connection.begin():
            return await connection.run_sync(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        async with self.db.engine.connect() as connection:
            return await connection.run_sync(fn)

    async def close(self) -> None:
        return None


_WRITERS: weakref.WeakKeyDictionary[Database, Writer] = weakref.WeakKeyDictionary()


def writer_for(db: Database) -> Writer:
    writer = _WRITERS.get(db)
    if writer is None:
        writer = _WRITERS[db] = Writer(db)
    return writer


async def close_writer(db: Database) -> None:
    writer = _WRITERS.pop(db, None)
    if writer is not None:
        await writer.close()
