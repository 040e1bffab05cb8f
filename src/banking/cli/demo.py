"""`banking demo`: the whole customer flow against a running server.

The root (banking/cli/__init__.py) registers these functions as top-level commands."""

from __future__ import annotations

from typing import Annotated

import typer

from banking.cli.common import err
from banking.core.config import ConfigError, get_settings


def demo_help() -> str:
    from banking.demo import STEPS

    steps = "\n\n".join(
        f"  {number}. {name}: {title}" for number, (name, title) in enumerate(STEPS, start=1)
    )
    return (
        "Walk the whole customer flow against a running server; exit 1 on any surprise.\n\n"
        "Two people sign up; each step checks the bank's answer and prints it (ids only with "
        "--verbose). A recap and the web login for the demo member close the run.\n\n"
        f"Steps (names for --until):\n\n{steps}"
    )


def demo(
    base_url: Annotated[str, typer.Option(help="The server to run against.")] = (
        "http://127.0.0.1:8000"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document, for scripts.")
    ] = False,
    until: Annotated[str | None, typer.Option(help="Stop after this step (e.g. log-in).")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print ids and idempotency keys.")
    ] = False,
    network_key: Annotated[
        str | None,
        typer.Option(
            envvar="CARD_NETWORK_API_KEY",
            help="Card network key for the card payment (default: the local dev key).",
        ),
    ] = None,
) -> None:
    from banking import demo as walkthrough

    if network_key is None:
        try:
            network_key = get_settings().card_network_api_key or None
        except ConfigError:
            network_key = None
    try:
        status = walkthrough.run(
            base_url, as_json=as_json, until=until, network_key=network_key, verbose=verbose
        )
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc
    raise typer.Exit(status)
