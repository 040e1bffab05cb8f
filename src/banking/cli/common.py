"""What every command group shares: the consoles, settings and a database for one command.

Command modules import this, never the CLI root (banking/cli/__init__.py), so the root can
import every group without an import circle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from banking.core.config import ConfigError, Settings, get_settings

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {exc}")
        raise typer.Exit(2) from exc


def run_with_database(work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(db)` on a fresh engine; afterwards close every connection the command
    opened: the read pool's, the ledger writer's and the engine's own."""
    from banking.core import reads
    from banking.core.db import Database
    from banking.ledger.writer import close_writer

    settings = load_settings()

    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await reads.close(db)
            await close_writer(db)
            await db.dispose()

    return asyncio.run(main())
