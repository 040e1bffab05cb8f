"""An acknowledged movement must survive a crash or power loss: the connections that
commit money run with the durable settings (SQLite: WAL and synchronous=FULL; PostgreSQL:
synchronous_commit on)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from banking.core.db import Database
from banking.ledger.writer import close_writer, writer_for
from tests.conftest import make_settings

SQLITE_SYNCHRONOUS_FULL = 2


def _durability(connection: Connection) -> tuple[str, str]:
    if connection.dialect.name == "sqlite":
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
        return str(mode).lower(), str(synchronous)
    commit = connection.exec_driver_sql("SHOW synchronous_commit").scalar_one()
    fsync = connection.exec_driver_sql("SHOW fsync").scalar_one()
    return str(commit), str(fsync)


def _expected(db: Database) -> tuple[str, str]:
    return ("wal", str(SQLITE_SYNCHRONOUS_FULL)) if db.is_sqlite else ("on", "on")


class TestDurableCommits:
    async def test_the_ledger_writer_commits_with_durable_settings(self, database_url: str) -> None:
        db = Database(make_settings(database_url))
        try:
            assert await writer_for(db).run(_durability) == _expected(db)
        finally:
            await close_writer(db)
            await db.dispose()

    async def test_every_pooled_connection_is_durable(self, database_url: str) -> None:
        db = Database(make_settings(database_url, db_pool_size=3))
        try:
            connections = [await db.engine.connect() for _ in range(3)]
            try:
                for connection in connections:
                    assert await connection.run_sync(_durability) == _expected(db)
            finally:
                for connection in connections:
                    await connection.close()
        finally:
            await db.dispose()
