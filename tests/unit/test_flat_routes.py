"""Routers' routes go straight into the app's list (core/routecache.py `add_routes`), and
the API they describe is the one `include_router` describes."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from banking.app import create_app
from banking.core import diagnostics
from banking.core.routecache import add_routes
from banking.routers import ROUTERS
from tests.conftest import make_settings


def _openapi(app: FastAPI) -> dict[str, object]:
    return get_openapi(title="t", version="1", routes=app.routes)


@pytest.mark.parametrize("router", [*ROUTERS, diagnostics.router], ids=lambda r: r.tags[0])
def test_flat_routes_describe_what_an_included_router_describes(router: APIRouter) -> None:
    included, flat = FastAPI(), FastAPI()
    included.include_router(router)
    add_routes(flat, router)
    assert _openapi(flat) == _openapi(included)
    # And each is answered by the route itself, not by a wrapper around the router.
    assert all(route in router.routes for route in flat.router.routes[-len(router.routes) :])


def test_the_app_has_no_included_router(tmp_path: object) -> None:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/flat.db"))
    wrapped = [r for r in app.router.routes if getattr(r, "original_router", None) is not None]
    assert wrapped == []
    assert sum(len(router.routes) for router in ROUTERS) <= len(app.router.routes)


def test_a_router_that_needs_include_router_is_refused() -> None:
    with_handler = APIRouter(on_startup=[lambda: None])
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), with_handler)
    outer, inner = APIRouter(), APIRouter()

    @inner.get("/x")
    def x() -> None: ...

    outer.include_router(inner)
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), outer)
