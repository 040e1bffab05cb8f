"""The `banking` command: serve, migrate, verify and administer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
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
    upgrade(settings.database_url, revision, audit_key=settings.audit_key)
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


def _stopped_on_request(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler that was there before it: this one, so a requested stop ends with status 0
    # (`make run` and process supervisors see a clean exit, not "Terminated").
    signal.signal(signal.SIGTERM, _stopped_on_request)
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


@audit_app.command("verify")
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


@audit_app.command("checkpoint")
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


@ledger_app.command("verify")
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
