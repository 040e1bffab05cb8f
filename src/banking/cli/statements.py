"""`banking statements render ACCOUNT YYYY-MM`: a statement to a file, for operators."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Monthly account statements.", no_args_is_help=True)


class OutputFormat(StrEnum):
    json = "json"
    csv = "csv"
    pdf = "pdf"


@app.command("render")
def render_command(
    account: Annotated[str, typer.Argument(help="The account's id or 12-digit number.")],
    month: Annotated[str, typer.Argument(help="The calendar month, YYYY-MM.")],
    format: Annotated[OutputFormat, typer.Option(help="Output format.")] = OutputFormat.pdf,
    output: Annotated[
        Path | None,
        typer.Option(
            help="File to write; default: standard output for json and csv, "
            "statement-<last4>-<month>.pdf for pdf."
        ),
    ] = None,
) -> None:
    """Render one month's statement of any customer account (no ownership check)."""
    from banking.cli.common import err, load_settings, run_with_database
    from banking.core.db import Database, utcnow
    from banking.core.errors import DomainError
    from banking.statements import render
    from banking.statements import service as statements
    from banking.statements.schemas import statement_out

    settings = load_settings()

    async def work(db: Database) -> statements.Statement | None:
        async with db.sessionmaker() as session:
            account_id = await statements.find_account_id(session, account)
            if account_id is None:
                return None
            return await statements.build_statement(
                session,
                account_id=account_id,
                month=month,
                timezone=settings.bank_timezone,
                now=utcnow(),
            )

    try:
        statement = run_with_database(work)
    except DomainError as exc:
        err.print(f"[bold red]{exc.code}:[/] {exc.detail}")
        raise typer.Exit(1) from exc
    if statement is None:
        err.print(f"[bold red]not_found:[/] no customer account {account!r}")
        raise typer.Exit(1)
    target: Path | None = output
    if format is OutputFormat.pdf:
        data = render.to_pdf(
            statement,
            bank_name=settings.bank_name,
            bank_address=settings.bank_address,
            bank_contact=settings.bank_contact,
        )
        target = output or Path(render.filename(statement, "pdf"))
    else:
        text = (
            render.to_csv(statement)
            if format is OutputFormat.csv
            else statement_out(statement).model_dump_json(indent=2) + "\n"
        )
        data = text.encode()
    if target is None or str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target.write_bytes(data)
    err.print(f"wrote {target} ({statement.count} lines, {len(data)} bytes)")
