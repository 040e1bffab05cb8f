"""`banking ledger verify`: prove the double-entry ledger's invariants."""

from __future__ import annotations

from typing import Annotated

import typer

from banking.cli.common import console, err, run_with_database

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)


@app.command("verify")
def ledger_verify(
    since: Annotated[
        str | None,
        typer.Option(
            help="Check only what changed since a time (ISO 8601, e.g. 2026-12-01T10:00Z), "
            "a duration back from now (90s, 15m, 2h, 1d) or a journal entry id.",
        ),
    ] = None,
    metrics_file: Annotated[
        str | None,
        typer.Option(
            help="Also write the result as Prometheus gauges (banking_ledger_verified, "
            "banking_ledger_verified_at_seconds) to this file, for a textfile collector.",
        ),
    ] = None,
) -> None:
    """Check every ledger invariant; exit 1 listing the offending ids."""
    from banking.ledger.verify import VerifyReport, resolve_since, verify_ledger, write_metrics

    async def work(db: object) -> VerifyReport:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            start = await resolve_since(session, since) if since else None
            return await verify_ledger(
                session,
                timezone=db.settings.bank_timezone,  # type: ignore[attr-defined]
                since=start,
            )

    try:
        report = run_with_database(work)
    except ValueError as exc:
        err.print(f"[bold red]--since:[/] {exc}")
        raise typer.Exit(2) from exc
    if metrics_file:
        write_metrics(metrics_file)
    scope = f" since {report.since.isoformat()}" if report.since else ""
    if not report.ok:
        for problem in report.problems:
            err.print(f"[bold red]{problem.check}[/] {problem.subject}: {problem.detail}")
        err.print(f"ledger verify failed{scope}: {len(report.problems)} problem(s)")
        raise typer.Exit(1)
    console.print(
        f"ledger ok{scope}: {report.entries} entries, {report.postings} postings, "
        f"{report.accounts} accounts, {report.holds} holds, "
        f"{report.idempotency_records} idempotency records verified "
        f"in {report.seconds:.2f} s"
    )
