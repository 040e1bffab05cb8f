"""`banking cards rotate-key`: debit cards and their data vault."""

from __future__ import annotations

import typer

from banking.cli.common import console, err, run_with_database

app = typer.Typer(help="Debit cards and their data vault.", no_args_is_help=True)


@app.command("rotate-key")
def cards_rotate_key() -> None:
    """Re-encrypt every card number under CARD_ENCRYPTION_KEY and recompute its digest.

    Put the old key in CARD_ENCRYPTION_PREVIOUS_KEYS first. CVV digests cannot be redone
    (the CVV is not stored): keep a retired key configured while cards still use it.
    """
    from banking.cards import service as cards
    from banking.cards.vault import VaultError

    try:
        report = run_with_database(cards.rotate_key)
    except VaultError as exc:
        err.print(f"[bold red]cannot decrypt card data:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"re-encrypted {report.reencrypted} card(s); {report.cards} card(s) under the "
        f"current key; {report.cvv_on_retired_keys} card(s) still verify their CVV with a "
        "retired key (keep it in CARD_ENCRYPTION_PREVIOUS_KEYS)"
    )
