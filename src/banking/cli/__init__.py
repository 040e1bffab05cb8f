"""The `banking` command: serve, migrate, verify and administer.

The root only assembles: one module per command group (banking/cli/<group>.py), each
importing its own domain and `cli/common.py`, never this module. `banking.cli:app` is the
console script; `python -m banking.cli` runs the same app (cli/__main__.py).
"""

from __future__ import annotations

import typer

from banking.cli import (
    audit,
    cards,
    demo,
    holds,
    idempotency,
    interest,
    ledger,
    payees,
    schedules,
    seed,
    server,
    statements,
    users,
    webhooks,
)

app = typer.Typer(
    help="Banking service: API server and operations.", no_args_is_help=True, add_completion=False
)
app.add_typer(audit.app, name="audit")
app.add_typer(ledger.app, name="ledger")
app.add_typer(users.app, name="users")
app.add_typer(statements.app, name="statements")
app.add_typer(cards.app, name="cards")
app.add_typer(holds.app, name="holds")
app.add_typer(idempotency.app, name="idempotency")
app.add_typer(schedules.app, name="schedules")
app.add_typer(payees.app, name="payees")
app.add_typer(interest.app, name="interest")
app.add_typer(webhooks.app, name="webhooks")

app.command()(server.version)
app.command()(server.migrate)
app.command()(server.serve)
app.command(help=demo.demo_help())(demo.demo)
app.command()(seed.seed)

__all__ = ["app"]
