"""Apply Alembic migrations programmatically (the `banking migrate` command and tests)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, audit_key: str | None = None) -> None:
    """Migrate to `revision`. `audit_key` is needed only by revision 0005, and only when
    the audit log holds rows sealed before it (they are re-sealed under the key)."""
    config = alembic_config(database_url)
    config.attributes["audit_key"] = audit_key
    command.upgrade(config, revision)


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
