"""Apply Alembic migrations programmatically (the `banking migrate` command and tests)."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

UNREACHABLE = "database unreachable at start-up"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def upgrade(
    database_url: str, revision: str = "head", *, audit_key: str | None = None
) -> list[tuple[str, str]]:
    """Migrate to `revision`; returns the revisions applied, each with its declared
    `schema_change` (docs/migrations.md). `audit_key` is needed only by revision 0005, and
    only when the audit log holds rows sealed before it (they are re-sealed under the key)."""
    config = alembic_config(database_url)
    config.attributes["audit_key"] = audit_key
    command.upgrade(config, revision)
    applied: list[tuple[str, str]] = config.attributes.get("applied", [])
    return applied


def rollout_notes(applied: list[tuple[str, str]]) -> list[str]:
    """What each applied migration means for the processes of the previous release."""
    meaning = {
        "expand": "additive: the previous release keeps serving",
        "contract": "contract: the previous release keeps serving, older ones turn not ready",
        "breaking": "breaking: processes of earlier releases turn not ready; replace them now",
    }
    return [f"migration {revision}: {meaning[change]}" for revision, change in applied]


def refusal(problem: str) -> str:
    """The one line a server prints when it will not start."""
    if problem.startswith(UNREACHABLE):
        return f"refusing to start: {problem}."
    if "not compatible with this release" in problem:
        return f"refusing to start: {problem}; run the release that migrated it."
    return f"refusing to start: {problem}; run `banking migrate` first."


async def migration_problem(database_url: str, *, timeout_s: float = 10.0) -> str | None:
    """None when the database is at the code's migration head, or at a later revision
    that declares this release compatible (core/schema_compat.py: a rolling deploy
    migrated it under us), else why not (one line). A missing SQLite file or folder is
    reported, never created."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    from banking.core.schema_compat import revision_problem

    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        return f"the database file {path} does not exist"
    # SQLite: open read-write only, so that the check never creates the file.
    url = f"sqlite+aiosqlite:///file:{path}?mode=rw&uri=true" if path is not None else database_url
    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            try:
                return await revision_problem(connection, head_revision())
            except DBAPIError:
                return "the database has never been migrated"
    except (OSError, TimeoutError, DBAPIError) as exc:
        return f"{UNREACHABLE} ({type(exc).__name__}); check DATABASE_URL"
    finally:
        await engine.dispose()


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
