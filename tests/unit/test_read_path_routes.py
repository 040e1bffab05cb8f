"""The GET routes of payees, scheduled transfers, approvals, interest rates, events (the
event stream too) and webhook endpoints read through the shared read path
(identity/deps.py `Read`): no ORM session is opened for them. Their bodies and errors are
checked by the integration tests of each package."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from banking.approvals import routes as approvals_routes
from banking.core.deps import get_session
from banking.events import routes as events_routes
from banking.interest import routes as interest_routes
from banking.payees import routes as payees_routes
from banking.schedules import routes as schedules_routes

READ_PATH_ROUTES = [
    "/v1/payees",
    "/v1/payees/{payee_id}",
    "/v1/scheduled-transfers",
    "/v1/scheduled-transfers/{schedule_id}",
    "/v1/approvals",
    "/v1/approvals/{approval_id}",
    "/v1/accounts/{account_id}/interest-rate",
    "/v1/admin/accounts/{account_id}/interest-rate",
    "/v1/events",
    "/v1/events/stream",
    "/v1/events/{event_id}",
    "/v1/webhook-endpoints",
    "/v1/webhook-endpoints/{endpoint_id}",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
]


def _calls(dependant: Dependant) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


@pytest.fixture(scope="module")
def get_routes() -> dict[str, APIRoute]:
    routers = [
        payees_routes.router,
        schedules_routes.router,
        approvals_routes.router,
        interest_routes.router,
        events_routes.router,
    ]
    return {
        route.path: route
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    }


@pytest.mark.parametrize("path", READ_PATH_ROUTES)
def test_the_get_route_opens_no_orm_session(get_routes: dict[str, APIRoute], path: str) -> None:
    calls = _calls(get_routes[path].dependant)
    assert calls, path
    assert get_session not in calls, path
    assert any(
        getattr(call, "__qualname__", "").endswith("_read_dependency.<locals>.read")
        for call in calls
    ), path
