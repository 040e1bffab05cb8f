"""`banking audit verify | checkpoint`: the hash-chained audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from banking.cli.common import console, err, load_settings, run_with_database

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A file written by `banking audit checkpoint`: also check that the chain "
            "still reaches the row it signed, with the same hash.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Seal pending rows, then walk the keyed hash chain; exit 1 at the first broken link
    (or when the chain was cut short or rewritten after the checkpoint), 2 when the
    checkpoint file is refused."""
    from banking.audit import service as audit

    settings = load_settings()
    signed: audit.Checkpoint | None = None
    if checkpoint is not None:
        try:
            signed = audit.Checkpoint.parse(checkpoint.read_text(), audit.keys_for(settings))
        except (OSError, UnicodeDecodeError, audit.CheckpointInvalid) as exc:
            err.print(f"[bold red]checkpoint refused:[/] {checkpoint}: {exc}")
            raise typer.Exit(2) from exc

    async def work(db: object) -> audit.VerifyReport:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            await audit.seal_pending(session)
            return await audit.verify(session, checkpoint=signed)

    report = run_with_database(work)
    if not report.ok:
        where = f" at row {report.broken_at_id}" if report.broken_at_id is not None else ""
        err.print(f"[bold red]audit chain broken[/]{where}: {report.reason}")
        raise typer.Exit(1)
    suffix = f"; matches the checkpoint at chain_seq {signed.chain_seq}" if signed else ""
    console.print(
        f"audit chain ok: {report.checked} rows verified, {report.unsealed} unsealed{suffix}"
    )


@app.command("checkpoint")
def audit_checkpoint() -> None:
    """Seal pending rows, verify the chain, and print a checkpoint of its head (position,
    hash, time, key id) signed with AUDIT_KEY. Store it outside the database (write-once
    storage, another system); `banking audit verify --checkpoint FILE` then detects a chain
    cut short or rewritten after it. Exit 1 without a checkpoint if the chain is broken."""
    from banking.audit import service as audit

    async def work(db: object) -> audit.Checkpoint:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            return await audit.make_checkpoint(session)

    try:
        signed = run_with_database(work)
    except audit.ChainBroken as exc:
        report = exc.report
        err.print(
            f"[bold red]audit chain broken[/] at row {report.broken_at_id}: {report.reason}; "
            "no checkpoint written"
        )
        raise typer.Exit(1) from exc
    print(signed.to_json())
