"""`banking seed`: a demo bank with history (and the logins it made).

The root (banking/cli/__init__.py) registers these functions as top-level commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from banking.cli.common import console, err, load_settings, run_with_database


def seed(
    users: Annotated[int, typer.Option(min=1, max=10_000, help="People to create.")] = 50,
    months: Annotated[int, typer.Option(min=1, max=60, help="Months of history.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same bank.")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (exit 0) when users exist already.")
    ] = False,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="BANKING_SEED_PASSWORD",
            help="Password of every seeded member (default: a random one, printed once).",
        ),
    ] = None,
    show_logins: Annotated[
        bool,
        typer.Option(
            "--show-logins",
            help="Outside production: print the logins of the last seeding again "
            f"(kept in {SEED_LOGINS}) and change nothing.",
        ),
    ] = False,
) -> None:
    """Fill an empty database with demo people, accounts and months of activity.

    Creates a support and an admin user too, and prints every credential. Outside
    production they are also kept in var/seed-logins.json (readable by the owner only),
    so `banking seed --show-logins` can print them again without wiping the database.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from banking import seed as seeding
    from banking.core.errors import DomainError

    if show_logins:
        _show_seed_logins()
        return
    plan = seeding.make_plan(users=users, months=months, seed=seed)
    member_password = password or seeding.new_password()

    async def work(db: object) -> seeding.SeedReport | None:
        assert isinstance(db, Database)
        if await seeding.has_users(db):
            return None
        with Progress(
            TextColumn("[bold]seeding[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("seed", total=len(plan.people) + len(plan.events))
            return await seeding.apply(
                db,
                plan,
                member_password=member_password,
                advance=lambda n: progress.advance(task, n),
            )

    from banking.core.db import Database

    try:
        report = run_with_database(work)
    except DomainError as exc:
        err.print(f"[bold red]refused:[/] {exc.detail}")
        raise typer.Exit(1) from exc
    if report is None:
        if if_empty:
            console.print("the database has users already: not seeding")
            return
        err.print("[bold red]the database has users already[/]: seed only an empty database")
        raise typer.Exit(1)
    console.print(
        f"seeded {report.people} people, {report.accounts} accounts, "
        f"{report.posted} movements ({report.declined} declined) over {months} months "
        f"(seed {seed})"
    )
    logins = [("member", report.member_email, report.member_password)]
    logins += [(staff.role, staff.email, staff.password) for staff in report.staff]
    settings = load_settings()
    if settings.is_prod:
        _print_logins(logins, title="Log in with (shown only now)")
        return
    SEED_LOGINS.parent.mkdir(parents=True, exist_ok=True)
    SEED_LOGINS.touch(mode=0o600)
    SEED_LOGINS.chmod(0o600)
    SEED_LOGINS.write_text(
        json.dumps(
            {
                "database_url": settings.database_url,
                "logins": [
                    dict(zip(("role", "email", "password"), row, strict=True)) for row in logins
                ],
            },
            indent=2,
        )
        + "\n"
    )
    _print_logins(logins, title="Log in with")
    console.print(f"again later, without reseeding: banking seed --show-logins ({SEED_LOGINS})")


SEED_LOGINS = Path("var") / "seed-logins.json"


def _print_logins(logins: list[tuple[str, str, str]], *, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("role", "email", "password"):
        table.add_column(column)
    for row in logins:
        table.add_row(*row)
    console.print(table)
    console.print(f"every seeded member has the member password; e.g. {logins[0][1]}")


def _show_seed_logins() -> None:
    """`banking seed --show-logins`: dev and test only; the database is not touched."""
    settings = load_settings()
    if settings.is_prod:
        err.print("[bold red]refused:[/] seeded logins are never kept in production")
        raise typer.Exit(2)
    if not SEED_LOGINS.exists():
        err.print(
            f"no seeded logins in {SEED_LOGINS}: this database was not seeded from this "
            "directory (or was seeded before logins were kept); `make clean` starts over"
        )
        raise typer.Exit(1)
    saved = json.loads(SEED_LOGINS.read_text())
    if saved.get("database_url") != settings.database_url:
        err.print(
            f"{SEED_LOGINS} belongs to another database ({saved.get('database_url')}), "
            f"not DATABASE_URL={settings.database_url}"
        )
        raise typer.Exit(1)
    logins = [(row["role"], row["email"], row["password"]) for row in saved["logins"]]
    _print_logins(logins, title="Log in with (from the last seeding)")
