"""Alembic environment: one migration history for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from banking.core.db import Base
from banking.core.schema_compat import declared_change, record_step
from banking.models import load_all_models

load_all_models()
config = context.config
target_metadata = Base.metadata


def _collect(*, step: Any, **_: Any) -> None:
    """What this run applied, for `banking migrate` to report (core/migrate.py)."""
    if step.is_upgrade:
        script = step.up_revision
        config.attributes.setdefault("applied", []).append(
            (script.revision, declared_change(script.module))
        )


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Each applied revision and its expand/contract declaration, for the readiness of
        # the release still running (core/schema_compat.py).
        on_version_apply=[record_step, _collect],
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
