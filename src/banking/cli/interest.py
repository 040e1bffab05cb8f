"""`banking interest accrue --through DATE` and `banking interest post --month YYYY-MM`.

Both are idempotent: days already accrued and months already posted are skipped, so a
re-run (or a run racing the API processes' interest job) never accrues or posts twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

app = typer.Typer(help="Savings interest: daily accrual, monthly posting.", no_args_is_help=True)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("write the date as YYYY-MM-DD") from None


@app.command("accrue")
def accrue_command(
    through: Annotated[
        str, typer.Option(help="Last day to accrue (YYYY-MM-DD, a day that is over).")
    ],
) -> None:
    """Accrue every open savings account's interest for each day up to THROUGH."""
    from banking.cli.common import console, err, run_with_database
    from banking.core.errors import DomainError
    from banking.interest import service as interest

    day = _parse_date(through)
    try:
        report = run_with_database(lambda db: interest.accrue(db, through=day))
    except DomainError as exc:
        err.print(f"[bold red]{exc.code}:[/] {exc.detail or exc.title}")
        raise typer.Exit(1) from exc
    console.print(
        f"accrued {report.days} day(s) on {report.accounts} account(s): "
        f"{report.interest_micro} micro-units"
    )


@app.command("post")
def post_command(
    month: Annotated[str, typer.Option(help="The month to post (YYYY-MM, a month that is over).")],
) -> None:
    """Post MONTH's interest to every open savings account (accruing its days first)."""
    from banking.cli.common import console, err, run_with_database
    from banking.core.errors import DomainError
    from banking.interest import service as interest

    try:
        report = run_with_database(lambda db: interest.post_month(db, month=month))
    except DomainError as exc:
        err.print(f"[bold red]{exc.code}:[/] {exc.detail or exc.title}")
        raise typer.Exit(1) from exc
    totals = ", ".join(f"{amount} {currency}" for currency, amount in report.posted_minor.items())
    console.print(
        f"{report.month}: posted to {report.accounts} account(s) ({totals or 'nothing'}); "
        f"{report.already_posted} already posted, {report.declined} declined"
    )
