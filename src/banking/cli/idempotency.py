"""`banking idempotency purge`: stored Idempotency-Key answers."""

from __future__ import annotations

import typer

from banking.cli.common import console, run_with_database

app = typer.Typer(help="Stored Idempotency-Key answers.", no_args_is_help=True)


@app.command("purge")
def idempotency_purge() -> None:
    """Delete every idempotency record older than IDEMPOTENCY_TTL_S, in small batches
    (API processes also do it every IDEMPOTENCY_PURGE_INTERVAL_S)."""
    from banking.core import idempotency_purge as purge
    from banking.core.db import utcnow

    deleted = run_with_database(lambda db: purge.purge_expired(db, now=utcnow()))
    console.print(f"deleted {deleted} expired idempotency record(s)")
