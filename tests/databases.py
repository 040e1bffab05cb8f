"""Fresh, migrated databases for tests: a copied SQLite file or a PostgreSQL database
cloned from a migrated template. Selected by TEST_DATABASE_URL (PostgreSQL when set)."""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import threading
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
    """Migrates once per test session, then hands out independent copies quickly.

    On PostgreSQL, creating a database from the template and dropping it take a few
    hundred milliseconds each; a background thread does both off the test's path: it keeps
    `ahead` fresh databases ready and drops the used ones while the next test runs. Under
    pytest-xdist each worker process has its own factory, template and databases.
    """

    def __init__(self, workdir: Path, *, ahead: int = 2) -> None:
        self.workdir = workdir
        self.template: str | None = None
        self.created: list[str] = []
        self.ahead = ahead
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._helper: threading.Thread | None = None
        self._lock = threading.Lock()

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

    def _create_postgres(self) -> str:
        name = f"banking_test_{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.created.append(name)
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def _help(self) -> None:
        """The background thread: create ahead, drop behind, until told to stop."""
        while True:
            action, name = self._work.get()
            if action == "stop":
                return
            try:
                if action == "create":
                    self._ready.put(self._create_postgres())
                elif action == "drop" and name is not None:
                    self._drop_postgres(name)
            except BaseException as exc:  # handed to the test that waits for a database
                if action == "create":
                    self._ready.put(exc)

    def new_url(self) -> str:
        template = self._prepare()
        if ON_POSTGRES:
            if self._helper is None:
                self._helper = threading.Thread(
                    target=self._help, name="test-databases", daemon=True
                )
                self._helper.start()
                for _ in range(self.ahead):
                    self._work.put(("create", None))
            self._work.put(("create", None))
            ready = self._ready.get(timeout=120)
            if isinstance(ready, BaseException):
                raise ready
            return _app_url(TEST_DATABASE_URL, ready)
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
        assert name
        if self._helper is not None and self._helper.is_alive():
            self._work.put(("drop", name))
        else:
            self._drop_postgres(name)

    def _drop_postgres(self, name: str) -> None:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with self._lock:
            if name in self.created:
                self.created.remove(name)

    def drop_all(self) -> None:
        if self._helper is not None:
            self._work.put(("stop", None))
            self._helper.join(120)
        if ON_POSTGRES:
            with self._lock:
                names = list(reversed(self.created))
            for name in names:
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
