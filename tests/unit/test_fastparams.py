"""core/fastparams.py reads every route's path, query, header and cookie parameters to the
same values and the same errors as FastAPI's own function."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import fastapi.dependencies.utils as fastapi_utils
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams
from starlette.routing import BaseRoute

from banking.app import create_app
from banking.core import fastparams
from tests.conftest import make_settings

SAMPLES = [
    "",
    "1",
    "0",
    "-5",
    "201",
    "abc",
    "true",
    "posted",
    "declined",
    "card.*",
    "2024-03",
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00",
    "99999999999999999999999",
    str(uuid.UUID(int=7)),
    "A" * 600,
]


def _dependants(dependant: Dependant) -> list[Dependant]:
    found = [dependant]
    for sub in dependant.dependencies:
        found.extend(_dependants(sub))
    return found


def _api_routes(routes: list[BaseRoute]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            found.extend(_api_routes(list(original.routes)))
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def _received(kind: str, pairs: list[tuple[str, str]]) -> Any:
    if kind == "query":
        return QueryParams(pairs)
    if kind == "header":
        return Headers(raw=[(key.encode(), value.encode()) for key, value in pairs])
    return dict(pairs)


@pytest.fixture(scope="module")
def parameter_lists(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[Any]]]:
    database = tmp_path_factory.mktemp("fastparams") / "app.db"
    app = create_app(make_settings(f"sqlite+aiosqlite:///{database}"))
    lists = []
    for route in _api_routes(list(app.router.routes)):
        for dependant in _dependants(route.dependant):
            for kind in ("path", "query", "header", "cookie"):
                fields = getattr(dependant, f"{kind}_params")
                if fields:
                    lists.append((kind, fields))
    return lists


def test_every_parameter_reads_as_fastapi_reads_it(
    parameter_lists: list[tuple[str, list[Any]]],
) -> None:
    fast = fastapi_utils.request_params_to_args
    original = getattr(fast, "original", None)
    assert original is not None, "installed by create_app"
    compared = 0
    for kind, fields in parameter_lists:
        names = [alias for field in fields for _, alias in fastapi_utils._get_param_aliases(field)]
        cases: list[list[tuple[str, str]]] = [[]]
        for name, value in itertools.product(names, SAMPLES):
            cases.append([(name, value)])
        # Every parameter at once, with each sample value.
        cases.extend([[(name, value) for name in names] for value in SAMPLES])
        for pairs in cases:
            received = _received(kind, pairs)
            expected = original(fields, received)
            got = fast(fields, received)
            assert repr(got) == repr(expected), (kind, [f.name for f in fields], pairs)
            compared += 1
    assert compared > 500


def test_installing_twice_wraps_once() -> None:
    fastparams.install()
    once = fastapi_utils.request_params_to_args
    fastparams.install()
    assert fastapi_utils.request_params_to_args is once
