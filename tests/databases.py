"""Fresh, migrated databases for tests: a copied SQLite file or a PostgreSQL database
cloned from a migrated template. Selected by TEST_DATABASE_URL (PostgreSQL when set)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine.url import make_url

from banking.core.migrate import upgrade

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
ON_POSTGRES = bool(TEST_DATABASE_URL)


def _asyncpg_dsn(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


def _app_url(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql+asyncpg", database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(TEST_DATABASE_URL, "postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class DatabaseFactory:
    """Migrates once per test session, then hands out independent copies quickly."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template: str | None = None
        self.created: list[str] = []

    def _prepare(self) -> str:
        if self.template is not None:
            return self.template
        if ON_POSTGRES:
            name = f"banking_tmpl_{uuid.uuid4().hex[:10]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            upgrade(_app_url(TEST_DATABASE_URL, name))
            self.template = name
        else:
            path = self.workdir / "template.db"
            upgrade(f"sqlite+aiosqlite:///{path}")
            self.template = str(path)
        return self.template

    def new_url(self) -> str:
        template = self._prepare()
        if ON_POSTGRES:
            name = f"banking_test_{uuid.uuid4().hex[:12]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            self.created.append(name)
            return _app_url(TEST_DATABASE_URL, name)
        path = self.workdir / f"{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"

    def drop(self, url: str) -> None:
        if not ON_POSTGRES:
            path = Path(make_url(url).database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            return
        name = make_url(url).database
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_all(self) -> None:
        if ON_POSTGRES:
            for name in reversed(self.created):
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
