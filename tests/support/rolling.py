"""The next releases' migrations for the rolling-deploy tests: the project's migration
history plus the test-only revisions in `rolling_migrations/` (an expand migration on the
code's head, then a contract migration of the release after it)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from banking.core.migrate import MIGRATIONS_DIR, alembic_config

ROLLING_MIGRATIONS = Path(__file__).resolve().parent / "rolling_migrations"
EXPAND = "t1_rolling_expand"
CONTRACT = "t2_rolling_contract"


def rolling_config(database_url: str) -> Config:
    config = alembic_config(database_url)
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations",
        os.pathsep.join([str(MIGRATIONS_DIR / "versions"), str(ROLLING_MIGRATIONS)]),
    )
    return config


def migrate_to(database_url: str, revision: str) -> None:
    """What `banking migrate` of a later release does: upgrade, here to `revision`."""
    command.upgrade(rolling_config(database_url), revision)
