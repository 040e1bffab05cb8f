"""`banking payees list`: members' saved payees."""

from __future__ import annotations

from typing import Annotated

import typer

from banking.cli.common import console, err, load_settings, run_with_database

app = typer.Typer(help="Members' saved payees.", no_args_is_help=True)


@app.command("list")
def payees_list(
    email: Annotated[str, typer.Argument(help="The member whose payees to show.")],
) -> None:
    """A member's payees, with the end of each new payee's cooldown (for support)."""
    from rich.table import Table
    from sqlalchemy import func, select

    from banking.core.db import Database
    from banking.identity.models import User
    from banking.payees.models import Payee
    from banking.payees.service import cooldown_ends_at

    async def work(db: Database) -> list[Payee] | None:
        async with db.sessionmaker() as session:
            user_id = await session.scalar(
                select(User.id).where(func.lower(User.email) == email.lower())
            )
            if user_id is None:
                return None
            rows = await session.execute(
                select(Payee).where(Payee.owner_id == user_id).order_by(Payee.name)
            )
            return list(rows.scalars())

    settings = load_settings()
    found = run_with_database(work)
    if found is None:
        err.print(f"no user with email {email}")
        raise typer.Exit(1)
    table = Table(title=f"Payees of {email}")
    for column in ("id", "name", "holder", "account", "currency", "added", "cooldown ends"):
        table.add_column(column)
    for payee in found:
        ends = cooldown_ends_at(settings, payee.created_at)
        table.add_row(
            str(payee.id),
            payee.name,
            payee.holder_name,
            f"..{payee.account_number[-4:]}",
            payee.currency,
            payee.created_at.isoformat(),
            ends.isoformat() if ends else "-",
        )
    console.print(table)
