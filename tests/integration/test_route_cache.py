"""The route cache (core/routecache.py) picks the route FastAPI's own scan picks, for every
route of the app, method and kind of path value, and answers with the same status."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from banking.core.routecache import RouteCache

# A path parameter filled with an id, a word that is a literal segment of some route
# ("me"), one that is not, and a month.
VALUES = ["id", "me", "zz-unknown", "2024-03"]
_PARAM = re.compile(r"\{[^}]+\}")


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            found.extend(_api_routes(list(original.routes)))
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _filled(template: str, value: str) -> str:
    """`template` with each parameter set to `value` (a fresh UUID for "id")."""
    return _PARAM.sub(lambda _match: str(uuid.uuid4()) if value == "id" else value, template)


class Recorder:
    """Keeps the scope of the last request after the app handled it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.scope: Scope = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        await self.app(scope, receive, send)


async def _chosen(
    http: httpx.AsyncClient, recorder: Recorder, method: str, path: str
) -> tuple[Any, int]:
    response = await http.request(method, path)
    route = recorder.scope.get("route")
    return getattr(route, "path", None), response.status_code


async def test_the_cache_chooses_the_route_fastapi_chooses(app: FastAPI) -> None:
    cache = app.router.middleware_stack
    assert isinstance(cache, RouteCache)
    assert cache.literals is not None, "every route path can be shaped"
    recorder = Recorder(app)
    transport = httpx.ASGITransport(app=recorder, client=("203.0.113.7", 51000))
    checked = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for route in _api_routes(list(app.router.routes)):
            for method in sorted(route.methods):
                for value in VALUES:
                    paths = [_filled(route.path, value) for _ in range(2)]
                    app.router.middleware_stack = cache.scan
                    try:
                        expected = [await _chosen(http, recorder, method, p) for p in paths]
                    finally:
                        app.router.middleware_stack = cache
                    got = [await _chosen(http, recorder, method, p) for p in paths]
                    assert got == expected, (method, paths)
                    checked += 1
        # An unknown API path, and a known one with a method it does not take.
        for method, path in [("GET", "/v1/no-such-thing"), ("DELETE", "/v1/cards")]:
            app.router.middleware_stack = cache.scan
            try:
                expected_status = (await http.request(method, path)).status_code
            finally:
                app.router.middleware_stack = cache
            assert (await http.request(method, path)).status_code == expected_status
    assert checked > 200
    assert cache.shapes, "the cache remembered shapes"
    assert any(index >= 0 for index in cache.shapes.values())


async def test_a_shape_is_remembered_once(app: FastAPI) -> None:
    cache = app.router.middleware_stack
    assert isinstance(cache, RouteCache)
    assert cache.shape("/v1/accounts/" + str(uuid.uuid4())) == cache.shape(
        "/v1/accounts/" + str(uuid.uuid4())
    )
    assert cache.shape("/v1/accounts/me") != cache.shape("/v1/accounts/zz")
    assert cache.shape("/v1/accounts\n") is None
