"""Whoever disposes a database closes its read path too (core/reads.py `reader_for`,
core/db.py `Database.dispose`): a job or command that read through it and then only
disposed the database left PostgreSQL connections for the garbage collector, which
warned of them in whatever test ran at that moment."""

from __future__ import annotations

import asyncio
import gc
import sys

from banking.core import reads
from banking.core.db import Database
from tests.conftest import make_settings


def test_disposing_a_database_closes_its_read_connections(database_url: str) -> None:
    async def main() -> None:
        db = Database(make_settings(database_url))
        first = reads.reader_for(db)
        assert await reads.run(db, lambda c: c.exec_driver_sql("SELECT 1").scalar()) == 1
        await db.dispose()
        # The old reader is gone: a read after this opens a new one (closed here too).
        assert reads.reader_for(db) is not first
        await db.dispose()

    unclosed: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda raised: unclosed.append(f"{raised.exc_value}")
    try:
        asyncio.run(main())
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert unclosed == []
