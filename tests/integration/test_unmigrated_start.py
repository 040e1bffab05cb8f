"""`banking serve` on a database that was never migrated: one clear line naming
`banking migrate`, exit code 2, no traceback, and no folder created for the database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.databases import ON_POSTGRES, TEST_DATABASE_URL, _admin, _app_url
from tests.server import free_port, server_env


def _serve(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "banking.cli", "serve", "--port", str(free_port())],
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_refused(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "banking migrate" in output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "refusing to start" in line]
    assert len(lines) == 1, output


@pytest.mark.skipif(ON_POSTGRES, reason="a SQLite file")
def test_a_missing_sqlite_folder_is_refused_and_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such" / "folder"
    result = _serve(f"sqlite+aiosqlite:///{folder / 'bank.db'}")
    _assert_refused(result)
    assert not (tmp_path / "no").exists()


@pytest.mark.skipif(ON_POSTGRES, reason="a SQLite file")
def test_an_empty_sqlite_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    _assert_refused(_serve(f"sqlite+aiosqlite:///{path}"))


@pytest.mark.skipif(not ON_POSTGRES, reason="a PostgreSQL database")
def test_an_empty_postgresql_database_is_refused() -> None:
    name = f"banking_empty_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        _assert_refused(_serve(_app_url(TEST_DATABASE_URL, name)))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_migrated_database_passes_the_check(database_url: str) -> None:
    from banking.core.migrate import migration_problem

    assert asyncio.run(migration_problem(database_url)) is None
