"""Authorization matrix over every operation in the OpenAPI schema.

For every operation: (a) no credentials → 401; (b) a member naming another member's ids
→ 404; (c) a member on support/admin routes → 403; (d) support on admin-only writes → 403.
New routes are covered without editing this file; a new kind of path parameter needs a
resource factory below (the test fails and says so). Public routes are listed with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Member, make_member, make_staff, open_account
from tests.support.openapi_examples import ExampleBuilder

PUBLIC = {
    ("GET", "/v1/health/live"): "liveness probe for orchestrators",
    ("GET", "/v1/health/ready"): "readiness probe for load balancers",
    ("POST", "/v1/auth/signup"): "creating an account needs no prior credentials",
    ("POST", "/v1/auth/login"): "the credentials are in the body",
    ("POST", "/v1/auth/refresh"): "the refresh token in the body is the credential",
}

Factory = Callable[[httpx.AsyncClient, Member], Awaitable[str]]


async def _own_session(client: httpx.AsyncClient, owner: Member) -> str:
    response = await client.get("/v1/auth/sessions", headers=owner.headers)
    return str(response.json()["items"][0]["id"])


async def _own_account(client: httpx.AsyncClient, owner: Member) -> str:
    account = await open_account(client, owner, balance_minor=10_00)
    return str(account["id"])


async def _own_holder(client: httpx.AsyncClient, owner: Member) -> str:
    response = await client.get("/v1/account-holders/me", headers=owner.headers)
    return str(response.json()["id"])


async def _current_month(client: httpx.AsyncClient, owner: Member) -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m}"


async def _own_card(client: httpx.AsyncClient, owner: Member) -> str:
    from tests.cards_support import funded_card

    _, card = await funded_card(client, owner, balance_minor=10_00)
    return str(card["id"])


async def _card_authorization(client: httpx.AsyncClient, owner: Member) -> str:
    """An approved authorization on the owner's card (network routes: checked for 401)."""
    from tests.cards_support import approved, funded_card

    _, card = await funded_card(client, owner, balance_minor=10_00)
    return await approved(client, card, 1_00)


# Path parameter name → how to get a value for a resource that belongs to `owner`.
RESOURCE_FACTORIES: dict[str, Factory] = {
    "session_id": _own_session,
    "account_id": _own_account,
    "holder_id": _own_holder,
    "month": _current_month,
    "card_id": _own_card,
    "authorization_id": _card_authorization,
}


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.openapi()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method.upper(), path, operation))
    return found


def _uses_bearer(operation: dict[str, Any]) -> bool:
    return any("HTTPBearer" in requirement for requirement in operation.get("security", []))


async def _fill_path(
    client: httpx.AsyncClient, path: str, owner: Member, cache: dict[str, str]
) -> str:
    import re

    for name in re.findall(r"{(\w+)}", path):
        if name not in cache:
            factory = RESOURCE_FACTORIES.get(name)
            if factory is None:
                pytest.fail(
                    f"no resource factory for path parameter {name!r} ({path}); "
                    f"add one to RESOURCE_FACTORIES"
                )
            cache[name] = await factory(client, owner)
        path = path.replace("{" + name + "}", cache[name])
    return path


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    headers = {**headers, "Idempotency-Key": "matrix-key-1"}
    if body is None:
        return await client.request(method, path, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


async def test_authorization_matrix(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await make_member(client)
    other = await make_member(client)
    support = await make_staff(client, app, "support")
    admin = await make_staff(client, app, "admin")
    builder = ExampleBuilder(app.openapi(), overrides={})
    cache: dict[str, str] = {}
    failures: list[str] = []
    checked = 0

    for method, template, operation in operations(app):
        if (method, template) in PUBLIC:
            continue
        path = await _fill_path(client, template, owner, cache)
        body = builder.body_for(operation)
        is_admin_route = template.startswith("/v1/admin/")

        anonymous = await _call(client, method, path, body, {})
        checked += 1
        if anonymous.status_code != 401:
            failures.append(
                f"(a) {method} {template}: no credentials gave "
                f"{anonymous.status_code}, expected 401"
            )
        if not _uses_bearer(operation):
            continue
        if is_admin_route:
            as_member = await _call(client, method, path, body, other.headers)
            checked += 1
            if as_member.status_code != 403:
                failures.append(
                    f"(c) {method} {template}: member gave {as_member.status_code}, expected 403"
                )
            if method != "GET":
                as_support = await _call(client, method, path, body, support.headers)
                checked += 1
                if as_support.status_code != 403:
                    failures.append(
                        f"(d) {method} {template}: support gave "
                        f"{as_support.status_code}, expected 403"
                    )
        elif "{" in template:
            as_other = await _call(client, method, path, body, other.headers)
            checked += 1
            if as_other.status_code != 404:
                failures.append(
                    f"(b) {method} {template}: another member gave "
                    f"{as_other.status_code}, expected 404 "
                    f"({as_other.text[:200]})"
                )
    assert admin.user_id
    assert checked > 0
    assert not failures, "\n".join(failures)
