"""`banking schedules run-due | list`: scheduled and standing transfers."""

from __future__ import annotations

from typing import Annotated

import typer

from banking.cli.common import console, err, run_with_database

app = typer.Typer(help="Scheduled and standing transfers.", no_args_is_help=True)


@app.command("run-due")
def schedules_run_due() -> None:
    """Run every scheduled-transfer occurrence (or retry) that is due, once (for cron, or
    with the in-process scheduler off: SCHEDULER_INTERVAL_S=0). Safe beside running API
    processes: an occurrence never runs twice."""
    from banking.core.db import Database
    from banking.schedules import service as schedules

    async def work(db: Database) -> dict[str, int]:
        return dict(await schedules.run_due(db))

    counts = run_with_database(work)
    console.print(
        f"posted {counts.get('posted', 0)}, declined {counts.get('declined', 0)} "
        f"(to be retried), failed {counts.get('failed', 0)}"
    )


@app.command("list")
def schedules_list(
    email: Annotated[str, typer.Argument(help="The member whose schedules to show.")],
) -> None:
    """A member's scheduled and standing transfers with their next run and last result
    (for support: what will leave the account, and what failed)."""
    from rich.table import Table
    from sqlalchemy import func, select

    from banking.core.db import Database
    from banking.identity.models import User
    from banking.schedules.models import ScheduledTransfer

    async def work(db: Database) -> list[ScheduledTransfer] | None:
        async with db.sessionmaker() as session:
            user_id = await session.scalar(
                select(User.id).where(func.lower(User.email) == email.lower())
            )
            if user_id is None:
                return None
            rows = await session.execute(
                select(ScheduledTransfer)
                .where(ScheduledTransfer.owner_id == user_id)
                .order_by(ScheduledTransfer.created_at)
            )
            return list(rows.scalars())

    found = run_with_database(work)
    if found is None:
        err.print(f"no user with email {email}")
        raise typer.Exit(1)
    table = Table(title=f"Scheduled transfers of {email}")
    for column in ("id", "status", "amount", "frequency", "to", "next run", "last result"):
        table.add_column(column)
    for row in found:
        last = f"{row.last_status} ({row.last_reason})" if row.last_reason else row.last_status
        table.add_row(
            str(row.id),
            row.status,
            f"{row.amount_minor} {row.currency}",
            row.frequency,
            f"..{row.target_account_number[-4:]}",
            row.next_run_at.isoformat() if row.next_run_at else "-",
            last or "-",
        )
    console.print(table)
