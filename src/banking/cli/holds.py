"""`banking holds expire`: release lapsed card holds once."""

from __future__ import annotations

import typer

from banking.cli.common import console, run_with_database

app = typer.Typer(help="Card holds on accounts.", no_args_is_help=True)


@app.command("expire")
def holds_expire() -> None:
    """Release every lapsed card hold (older than CARD_HOLD_DAYS): what the sweeper in each
    API process does every HOLD_SWEEP_INTERVAL_S, once (for cron, or with the sweeper off)."""
    from banking.cards import service as cards
    from banking.core.db import utcnow

    released = run_with_database(lambda db: cards.expire_all_due(db, now=utcnow()))
    console.print(f"released {released} expired hold(s)")
