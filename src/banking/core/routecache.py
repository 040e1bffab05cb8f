"""Route lookup remembered by the path's shape, so that no request scans every router.

FastAPI matches a request against the app's routes in order, and each included router
route by route, with some bookkeeping per route tried: a route of the seventh router paid
for trying every route of the six before it (the statements list about a fifth of its
server CPU). `install(app)` puts a dispatcher in front of the app's router that remembers,
per method and path shape, which top-level route (usually an included router) matched
first, and goes straight to it; the route itself still matches the request and handles
it exactly as before.

`add_routes(app, router)` puts a router's routes straight into the app's list, in place of
`app.include_router(router)`: FastAPI wraps an included router in a route of its own that
scans the router's routes twice per request (once to match, once to handle), about a tenth
of a short read's server CPU. Flat, the remembered route is the route itself
(tests/unit/test_flat_routes.py holds the OpenAPI document to what `include_router` gives).

A path's shape keeps each segment that is a literal segment of some route's path, and
replaces every other (non-empty) segment with a placeholder. It is exact when every route
parameter takes a whole segment and matches any text (`{name}`, no convertor), which
`install` checks; then two paths of one shape are matched by the same routes, so the
first route that fully matched one is the first that fully matches the other. Anything
else (a convertor, a parameter inside a segment, a `root_path`, a newline in the path,
a route not matching fully) goes through FastAPI's own scan, unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send

try:  # The steps FastAPI's router takes around a matched route (see APIRouter.app).
    from fastapi.routing import _apply_router_form_limits, _update_scope
    from fastapi.telemetry._api import _route_selected
except ImportError:  # pragma: no cover - another FastAPI: its own scan only
    _apply_router_form_limits = _update_scope = _route_selected = None  # type: ignore[assignment]

# Shapes remembered at most: a client inventing paths cannot grow the table past this.
MAX_SHAPES = 4096
_PLACEHOLDER = "\x00"
_PARAMETER = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*(?::str)?\}$")
_NO_MATCH = -1


def _paths(routes: list[BaseRoute]) -> list[str] | None:
    """Every route path of the app (through included routers), or None when one of them
    is outside what a shape can stand for."""
    found: list[str] = []
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            if getattr(context, "prefix", "") != "":
                return None
            inner = _paths(list(original.routes))
            if inner is None:
                return None
            found.extend(inner)
            continue
        path = getattr(route, "path", None)
        if not isinstance(path, str) or getattr(route, "host", None):
            return None
        found.append(path)
    return found


def _literals(paths: list[str]) -> frozenset[str] | None:
    literals: set[str] = set()
    for path in paths:
        for segment in path.split("/"):
            if "{" in segment or "}" in segment:
                if not _PARAMETER.match(segment):
                    return None
            elif segment:
                literals.add(segment)
    return frozenset(literals)


class RouteCache:
    """The app router's entry point (see the module docstring)."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.scan = router.app
        self.shapes: dict[tuple[str, str], int] = {}
        self.routes: tuple[BaseRoute, ...] = ()
        self.literals: frozenset[str] | None = None

    def _refresh(self) -> None:
        """(Re)learn the routes: after start-up, only if routes were added since."""
        self.routes = tuple(self.router.routes)
        self.shapes = {}
        paths = _paths(list(self.routes))
        self.literals = None if paths is None else _literals(paths)

    def shape(self, path: str) -> str | None:
        literals = self.literals
        if literals is None or "\n" in path:
            return None
        return "/".join(
            segment if not segment or segment in literals else _PLACEHOLDER
            for segment in path.split("/")
        )

    def _first_full(self, scope: Scope) -> int:
        for index, route in enumerate(self.routes):
            if route.matches(scope)[0] is Match.FULL:
                return index
        return _NO_MATCH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path") or _update_scope is None:
            await self.scan(scope, receive, send)
            return
        routes = self.router.routes
        if len(routes) != len(self.routes) or (routes and routes[-1] is not self.routes[-1]):
            self._refresh()
        shape = self.shape(scope["path"])
        if shape is None:
            await self.scan(scope, receive, send)
            return
        key = (scope["method"], shape)
        index = self.shapes.get(key)
        if index is None:
            index = self._first_full(scope)
            if len(self.shapes) < MAX_SHAPES:
                self.shapes[key] = index
        if index == _NO_MATCH:
            await self.scan(scope, receive, send)
            return
        route = self.routes[index]
        match, child_scope = route.matches(scope)
        if match is not Match.FULL:  # pragma: no cover - the shape argument says never
            await self.scan(scope, receive, send)
            return
        router = self.router
        _apply_router_form_limits(scope, router.form_limits)
        if "router" not in scope:
            scope["router"] = router
        _update_scope(scope, child_scope)
        _route_selected(
            scope=scope,
            path=getattr(route, "path_format", None),
            mount=isinstance(route, Mount),
        )
        await route.handle(scope, receive, send)


def install(app: FastAPI) -> RouteCache | None:
    """Put the route cache in front of `app`'s router (after every route is added),
    unless the router has middleware of its own (then it stays as it is)."""
    router = app.router
    if router.middleware_stack != router.app:
        return None
    cache = RouteCache(router)
    cache._refresh()
    router.middleware_stack = cache
    return cache


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """`router`'s routes, each already carrying the router's prefix, tags, dependencies and
    responses (`APIRouter.add_api_route` merges them in), appended to `app`'s routes as
    they are (see the module docstring). Only for a router of path operations with no
    lifespan or event handlers of its own: anything else needs `include_router`."""
    default_lifespan = type(APIRouter().lifespan_context)
    if (
        router.on_startup
        or router.on_shutdown
        or type(router.lifespan_context) is not default_lifespan
    ):
        raise ValueError("a router with a lifespan or event handlers needs include_router")
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise ValueError(f"not a path operation: {route!r}; use include_router")
        app.router.routes.append(route)
