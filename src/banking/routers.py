"""Every domain's router, in one list: adding a domain is one line here."""

from __future__ import annotations

from fastapi import FastAPI

from banking.accounts import routes as accounts
from banking.admin import routes as admin
from banking.audit import routes as audit
from banking.cards import routes as cards
from banking.core import health
from banking.holders import routes as holders
from banking.identity import routes as identity
from banking.ledger import lifecycle as ledger
from banking.payments import routes as payments
from banking.statements import routes as statements


def include_routers(app: FastAPI) -> None:
    # A request is matched against the routers in this order, each scanned route by route:
    # the money hot path (balances, transfers, card authorizations) comes first. Paths of
    # different routers never overlap, so the order changes nothing else.
    for router in (
        accounts.router,
        payments.router,
        cards.network_router,
        cards.router,
        identity.router,
        holders.router,
        statements.router,
        audit.router,
        admin.router,
        health.router,
    ):
        app.include_router(router)
    app.state.startup_hooks.append(ledger.start)
    app.state.shutdown_hooks.append(ledger.stop)
    if app.state.settings.app_env.value == "test":
        from banking.core import diagnostics

        app.include_router(diagnostics.router)
