"""The `banking` command: serve, migrate, verify and administer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from banking import __version__
from banking.core.config import ConfigError, Settings, get_settings
from banking.statements.cli import app as statements_app

app = typer.Typer(
    help="Banking service: API server and operations.", no_args_is_help=True, add_completion=False
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(users_app, name="users")
app.add_typer(statements_app, name="statements")
cards_app = typer.Typer(help="Debit cards and their data vault.", no_args_is_help=True)
holds_app = typer.Typer(help="Card holds on accounts.", no_args_is_help=True)
idempotency_app = typer.Typer(help="Stored Idempotency-Key answers.", no_args_is_help=True)
app.add_typer(cards_app, name="cards")
app.add_typer(holds_app, name="holds")
app.add_typer(idempotency_app, name="idempotency")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def load_settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[bold red]configuration error:[/] {exc}")
        raise typer.Exit(2) from exc


def run_with_database(work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(db)` on a fresh engine and dispose of it afterwards."""
    from banking.core.db import Database

    settings = load_settings()

    async def main() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations (an explicit step in production).

    For SQLite, the database file (and its folder) is created here, never by the server.
    """
    from banking.core.migrate import sqlite_path, upgrade

    settings = load_settings()
    path = sqlite_path(settings.database_url)
    if path is not None and not path.parent.is_dir():
        path.parent.mkdir(parents=True)
        console.print(f"created the folder {path.parent}")
    upgrade(settings.database_url, revision)
    console.print(f"database migrated to {revision}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API and the web UI with uvicorn.

    With several workers and no PROMETHEUS_MULTIPROC_DIR set, a temporary directory is
    created for prometheus-client's multiprocess mode (so /metrics adds up every worker)
    and removed on exit.
    """
    from banking.core.logging import configure_logging

    settings = load_settings()
    from banking.core.migrate import migration_problem, refusal

    problem = asyncio.run(migration_problem(settings.database_url))
    if problem is not None:
        err.print(refusal(problem))
        raise typer.Exit(2)
    if settings.is_sqlite and workers > 1:
        err.print(
            "[bold red]SQLite runs in one process[/]: its writer lock is in-process. "
            "Use PostgreSQL (DATABASE_URL) for several workers."
        )
        raise typer.Exit(2)
    # The supervisor logs too (worker start, restart, shutdown): same format as the workers.
    configure_logging(settings.log_level, settings.effective_log_format.value)
    with metrics_directory(workers=1 if reload else workers):
        _run_uvicorn(settings, host=host, port=port, workers=workers, reload=reload)


@contextlib.contextmanager
def metrics_directory(*, workers: int) -> Iterator[str | None]:
    """Set PROMETHEUS_MULTIPROC_DIR to a fresh directory for the server's lifetime.

    Needed only with several workers; an operator's own setting is kept as it is. Workers
    are spawned after this runs, so they inherit the variable before importing
    prometheus-client (which reads it once, at import).
    """
    configured = os.environ.get(MULTIPROC_ENV, "").strip()
    if workers <= 1 or configured:
        yield configured or None
        return
    directory = tempfile.mkdtemp(prefix="banking-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    uvicorn.run(
        "banking.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        server_header=False,
        date_header=True,
        # The application reads X-Forwarded-For itself (core/clientaddr.py).
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        log_config=None,
        access_log=False,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
    )


@app.command()
def demo(
    base_url: Annotated[str, typer.Option(help="The server to run against.")] = (
        "http://127.0.0.1:8000"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document, for scripts.")
    ] = False,
    until: Annotated[str | None, typer.Option(help="Stop after this step (e.g. log-in).")] = None,
    network_key: Annotated[
        str | None,
        typer.Option(
            envvar="CARD_NETWORK_API_KEY",
            help="Card network key for the card payment (default: the local dev key).",
        ),
    ] = None,
) -> None:
    """Walk the whole customer flow against a running server; exit 1 on any surprise."""
    from banking import demo as walkthrough

    if network_key is None:
        try:
            network_key = get_settings().card_network_api_key or None
        except ConfigError:
            network_key = None
    try:
        status = walkthrough.run(base_url, as_json=as_json, until=until, network_key=network_key)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    raise typer.Exit(status)


@app.command()
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
) -> None:
    """Fill an empty database with demo people, accounts and months of activity.

    Creates a support and an admin user too, and prints every credential once.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from banking import seed as seeding
    from banking.core.errors import DomainError

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
    table = Table(title="Log in with (shown only now)", title_justify="left")
    for column in ("role", "email", "password"):
        table.add_column(column)
    table.add_row("member", report.member_email, report.member_password)
    for staff in report.staff:
        table.add_row(staff.role, staff.email, staff.password)
    console.print(table)
    console.print(f"every seeded member has the password above; e.g. {report.member_email}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Seal pending rows, then walk the hash chain; exit 1 at the first broken link."""
    from banking.audit import service as audit

    async def work(db: object) -> audit.VerifyReport:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            await audit.seal_pending(session)
            return await audit.verify(session)

    report = run_with_database(work)
    if not report.ok:
        err.print(f"[bold red]audit chain broken[/] at row {report.broken_at_id}: {report.reason}")
        raise typer.Exit(1)
    console.print(f"audit chain ok: {report.checked} rows verified, {report.unsealed} unsealed")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every ledger invariant; exit 1 listing the offending ids."""
    from banking.ledger.verify import VerifyReport, verify_ledger

    async def work(db: object) -> VerifyReport:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            return await verify_ledger(session)

    report = run_with_database(work)
    if not report.ok:
        for problem in report.problems:
            err.print(f"[bold red]{problem.check}[/] {problem.subject}: {problem.detail}")
        err.print(f"ledger verify failed: {len(report.problems)} problem(s)")
        raise typer.Exit(1)
    console.print(
        f"ledger ok: {report.entries} entries, {report.postings} postings, "
        f"{report.accounts} accounts verified"
    )


@cards_app.command("rotate-key")
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


@holds_app.command("expire")
def holds_expire() -> None:
    """Release every card hold older than CARD_HOLD_DAYS (reads also do it lazily)."""
    from banking.cards import service as cards
    from banking.core.db import utcnow

    released = run_with_database(lambda db: cards.expire_all_due(db, now=utcnow()))
    console.print(f"released {released} expired hold(s)")


@idempotency_app.command("purge")
def idempotency_purge() -> None:
    """Delete every idempotency record older than IDEMPOTENCY_TTL_S, in small batches
    (API processes also do it every IDEMPOTENCY_PURGE_INTERVAL_S)."""
    from banking.core import idempotency_purge as purge
    from banking.core.db import utcnow

    deleted = run_with_database(lambda db: purge.purge_expired(db, now=utcnow()))
    console.print(f"deleted {deleted} expired idempotency record(s)")


ADMIN_PASSWORD_ENV = "BANKING_ADMIN_PASSWORD"


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    from_env = os.environ.get(ADMIN_PASSWORD_ENV)
    if from_env:
        return from_env
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Option(help="The administrator's email (the login).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an administrator (no account-holder profile).

    The password comes from --password-stdin, else the BANKING_ADMIN_PASSWORD variable,
    else an interactive prompt; it must pass the password policy.
    """
    from pydantic import TypeAdapter, ValidationError

    from banking.core.errors import DomainError
    from banking.identity import service as identity
    from banking.identity.models import Role
    from banking.identity.schemas import Email

    try:
        normalized = str(TypeAdapter(Email).validate_python(email)).strip().lower()
    except ValidationError as exc:
        err.print(f"not a valid email address: {email!r}")
        raise typer.Exit(2) from exc
    password = _read_new_password(password_stdin)

    async def work(db: object) -> None:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            await identity.create_user(
                session, email=normalized, password=password, role=Role.admin
            )

    try:
        run_with_database(work)
    except DomainError as exc:
        err.print(f"[bold red]refused:[/] {exc.detail}")
        raise typer.Exit(1) from exc
    console.print(f"created admin {normalized}")


@users_app.command("set-role")
def users_set_role(
    email: str,
    role: Annotated[str, typer.Argument(help="member, support or admin")],
) -> None:
    """Change a user's role."""
    from banking.identity import service as identity
    from banking.identity.models import Role

    try:
        new_role = Role(role)
    except ValueError as exc:
        err.print(f"unknown role {role!r}; choose member, support or admin")
        raise typer.Exit(2) from exc

    async def work(db: object) -> None:
        async with db.sessionmaker() as session:  # type: ignore[attr-defined]
            await identity.set_role(session, email=email, role=new_role)

    from banking.core.errors import NotFound

    try:
        run_with_database(work)
    except NotFound as exc:
        err.print(f"no user with email {email}")
        raise typer.Exit(1) from exc
    console.print(f"{email} is now {new_role.value}")


if __name__ == "__main__":  # pragma: no cover
    app()
