"""`banking migrate` says what each migration it applied means for the processes of the
previous release (docs/migrations.md), and records it in `schema_revision`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from banking.cli import app as cli
from banking.core.config import get_settings
from banking.core.migrate import MIGRATIONS_DIR, head_revision, rollout_notes, upgrade
from tests.conftest import TEST_SECRETS

# The revision that creates `schema_revision` (found by file name: ids may be re-chained).
SCHEMA_REVISION = next(
    script.revision
    for script in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()
    if script.path.endswith("_schema_revision.py")
)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # A database of its own, left at revision 0006 (before the table that records them).
    url = f"sqlite+aiosqlite:///{tmp_path / 'rollout.db'}"
    upgrade(url, "0006")
    return url


@pytest.fixture
def runner(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name, value in TEST_SECRETS.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


async def _recorded(database_url: str) -> list[tuple[str, str]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT revision, schema_change FROM schema_revision ORDER BY revision")
            )
            return [(row[0], row[1]) for row in rows]
    finally:
        await engine.dispose()


def test_migrate_names_each_applied_revision_and_what_it_means(
    runner: CliRunner, database_url: str
) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    note = f"migration {SCHEMA_REVISION}: additive: the previous release keeps serving"
    assert note in result.output
    recorded = dict(asyncio.run(_recorded(database_url)))
    assert recorded[SCHEMA_REVISION] == "expand"
    assert head_revision() in recorded
    again = runner.invoke(cli, ["migrate"])
    assert again.exit_code == 0, again.output
    assert "migration " not in again.output


def test_each_kind_of_change_has_its_note() -> None:
    notes = rollout_notes([("a", "expand"), ("b", "contract"), ("c", "breaking")])
    assert notes[1].startswith("migration b: contract")
    assert "replace them now" in notes[2]
