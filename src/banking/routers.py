"""Every domain's router, in one list: adding a domain is one line here."""

from __future__ import annotations

from fastapi import FastAPI

from banking.audit import routes as audit
from banking.core import health
from banking.holders import routes as holders
from banking.identity import routes as identity


def include_routers(app: FastAPI) -> None:
    for router in (health.router, identity.router, holders.router, audit.router):
        app.include_router(router)
    if app.state.settings.app_env.value == "test":
        from banking.core import diagnostics

        app.include_router(diagnostics.router)
