"""`banking users create-admin | set-role`: users and roles."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from banking.cli.common import console, err, run_with_database

app = typer.Typer(help="Users and roles.", no_args_is_help=True)


ADMIN_PASSWORD_ENV = "BANKING_ADMIN_PASSWORD"


def _read_new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    from_env = os.environ.get(ADMIN_PASSWORD_ENV)
    if from_env:
        return from_env
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("create-admin")
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


@app.command("set-role")
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
