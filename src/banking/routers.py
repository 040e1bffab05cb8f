"""Every domain's router, in one list: adding a domain is one line here."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from banking.accounts import routes as accounts
from banking.admin import routes as admin
from banking.approvals import job as approvals_job
from banking.approvals import routes as approvals
from banking.audit import routes as audit
from banking.cards import routes as cards
from banking.core import health, meta, routecache
from banking.events import dispatcher as events_dispatcher
from banking.events import routes as events
from banking.holders import routes as holders
from banking.identity import routes as identity
from banking.interest import job as interest_job
from banking.interest import routes as interest
from banking.ledger import lifecycle as ledger
from banking.payees import routes as payees
from banking.payments import routes as payments
from banking.schedules import routes as schedules
from banking.schedules import scheduler
from banking.statements import routes as statements

# A request is matched against the routes in this order (the first time a path's shape is
# seen; core/routecache.py remembers the answer): the money hot path (balances,
# transfers, card authorizations) comes first. Paths of different routers never overlap,
# so the order changes nothing else.
ROUTERS: tuple[APIRouter, ...] = (
    accounts.router,
    payments.router,
    cards.network_router,
    cards.router,
    identity.router,
    holders.router,
    statements.router,
    payees.router,
    schedules.router,
    audit.router,
    admin.router,
    interest.router,
    approvals.router,
    events.router,
    health.router,
    meta.router,
)


def include_routers(app: FastAPI) -> None:
    # Each router's routes go straight into the app's list (core/routecache.py `add_routes`).
    for router in ROUTERS:
        routecache.add_routes(app, router)
    app.state.startup_hooks.append(ledger.start)
    app.state.startup_hooks.append(scheduler.start)
    app.state.startup_hooks.append(interest_job.start)
    app.state.startup_hooks.append(approvals_job.start)
    app.state.startup_hooks.append(events_dispatcher.start)
    # The jobs (the scheduler, which writes through the ledger, among them) have stopped
    # before any shutdown hook runs (core/jobs.py `stop_all`), so the writer closes last.
    app.state.shutdown_hooks.append(ledger.stop)
    if app.state.settings.app_env.value == "test":
        from banking.core import diagnostics

        routecache.add_routes(app, diagnostics.router)
