"""Authorization matrix over every operation in the OpenAPI schema.

For every operation: (a) no credentials → 401; (b) a member naming another member's ids
(in the path or in the body) → 404; (c) a member on support/admin routes → 403; (d) support
on admin-only writes → 403. Each refusal has a control: the same call by the rightful
caller (the owner for (b), support for staff reads, an admin for admin routes) is not
refused, so a 404 or 403 proves the check and not a broken route or request.
New routes are covered without editing this file; a new kind of path parameter needs a
resource factory below (the test fails and says so). Public routes are listed with the reason.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Member, login, make_member, make_staff, open_account
from tests.support.openapi_examples import ExampleBuilder

PUBLIC = {
    ("GET", "/v1/health/live"): "liveness probe for orchestrators",
    ("GET", "/v1/health/ready"): "readiness probe for load balancers",
    ("GET", "/v1/meta"): "the bank's name, shown in the web UI before anyone logs in",
    ("POST", "/v1/auth/signup"): "creating an account needs no prior credentials",
    ("POST", "/v1/auth/login"): "the credentials are in the body",
    ("POST", "/v1/auth/refresh"): "the refresh token in the body is the credential",
}

Factory = Callable[[httpx.AsyncClient, Member], Awaitable[str]]


async def _own_session(client: httpx.AsyncClient, owner: Member) -> str:
    """A second session of the owner's, so revoking it leaves the test's own token valid."""
    assert (await login(client, owner.email, owner.password)).status_code == 200
    response = await client.get("/v1/auth/sessions", headers=owner.headers)
    return next(str(item["id"]) for item in response.json()["items"] if not item["current"])


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


async def _own_payee(client: httpx.AsyncClient, owner: Member) -> str:
    payee_owner = await make_member(client)
    account = await open_account(client, payee_owner)
    response = await client.post(
        "/v1/payees",
        json={"name": "Payee", "account_number": account["number"]},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _eventually(client: httpx.AsyncClient, owner: Member, path: str, what: str) -> str:
    """The first item's id of a list that fills in the background (the events dispatcher)."""
    import asyncio

    for _ in range(400):
        response = await client.get(path, headers=owner.headers)
        items = response.json().get("items", [])
        if items:
            return str(items[0]["id"])
        await asyncio.sleep(0.025)
    pytest.fail(f"no {what} appeared at {path}")


async def _own_event(client: httpx.AsyncClient, owner: Member) -> str:
    await open_account(client, owner)
    return await _eventually(client, owner, "/v1/events", "event")


async def _own_endpoint(client: httpx.AsyncClient, owner: Member) -> str:
    # Port 9 (discard) on loopback: deliveries fail at once, never leave the machine.
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _own_schedule(client: httpx.AsyncClient, owner: Member) -> str:
    source = await open_account(client, owner, balance_minor=10_00)
    target = await open_account(client, owner)
    first = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    response = await client.post(
        "/v1/scheduled-transfers",
        json={
            "source_account_id": source["id"],
            "target_account_id": target["id"],
            "amount": 1_00,
            "first_run_at": first.isoformat(),
            "frequency": "monthly",
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _own_entry(client: httpx.AsyncClient, owner: Member) -> str:
    """A posted journal entry on the owner's account (its opening deposit)."""
    account = await open_account(client, owner, balance_minor=10_00)
    response = await client.get(f"/v1/accounts/{account['id']}/transactions", headers=owner.headers)
    return str(response.json()["items"][0]["id"])


async def _own_approval(client: httpx.AsyncClient, owner: Member) -> str:
    """A pending approval of the owner's: a transfer above the default threshold."""
    from tests.factories import keyed

    source = await open_account(client, owner, balance_minor=20_000_000)
    target = await open_account(client, owner)
    response = await client.post(
        "/v1/transfers",
        json={
            "source_account_id": source["id"],
            "target_account_id": target["id"],
            "amount": 10_000_001,
        },
        headers=keyed(owner.headers),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


_ENDPOINTS: dict[str, str] = {}


async def _matrix_endpoint(client: httpx.AsyncClient, owner: Member) -> str:
    if owner.user_id not in _ENDPOINTS:
        _ENDPOINTS[owner.user_id] = await _own_endpoint(client, owner)
    return _ENDPOINTS[owner.user_id]


async def _own_delivery(client: httpx.AsyncClient, owner: Member) -> str:
    endpoint_id = await _matrix_endpoint(client, owner)
    await open_account(client, owner)
    return await _eventually(
        client, owner, f"/v1/webhook-endpoints/{endpoint_id}/deliveries", "delivery"
    )


# Path parameter name → how to get a value for a resource that belongs to `owner`.
RESOURCE_FACTORIES: dict[str, Factory] = {
    "session_id": _own_session,
    "account_id": _own_account,
    "holder_id": _own_holder,
    "month": _current_month,
    "card_id": _own_card,
    "authorization_id": _card_authorization,
    "payee_id": _own_payee,
    "schedule_id": _own_schedule,
    "entry_id": _own_entry,
    "approval_id": _own_approval,
    "event_id": _own_event,
    "endpoint_id": _matrix_endpoint,
    "delivery_id": _own_delivery,
}


async def _second_account(client: httpx.AsyncClient, owner: Member) -> str:
    return await _own_account(client, owner)


# Body field naming a resource → the factory for the owner's resource it is filled with.
# A body that names one is an ownership check like a path parameter: (b) applies.
BODY_RESOURCES: dict[str, Factory] = {
    "account_id": _own_account,
    "source_account_id": _own_account,
    "target_account_id": _second_account,
}
# Staff reads that support may not make either (support reads everything else under
# /v1/admin/): the reason is the route's own rule.
ADMIN_ONLY_READS = {
    ("GET", "/v1/admin/audit"): "the audit log records staff actions; only admins review it",
}
# Refusals: a control call answered with one of these did not reach the route's logic.
REFUSED = {401, 403, 404}


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
    headers = {**headers, "Idempotency-Key": f"matrix-{uuid.uuid4().hex}"}
    if body is None:
        return await client.request(method, path, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


def _names_owned_resource(template: str, body: Any) -> bool:
    return "{" in template or (
        isinstance(body, dict) and any(field in body for field in BODY_RESOURCES)
    )


async def test_authorization_matrix(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await make_member(client)
    other = await make_member(client)
    support = await make_staff(client, app, "support")
    admin = await make_staff(client, app, "admin")
    body_ids = {field: await make(client, owner) for field, make in BODY_RESOURCES.items()}
    builder = ExampleBuilder(app.openapi(), overrides=body_ids)
    cache: dict[str, str] = {}
    failures: list[str] = []
    checked = 0
    ownership_checked: list[str] = []

    def expect(label: str, response: httpx.Response, wanted: int | None) -> None:
        """`wanted` a status, or None for a control call that must not be refused."""
        nonlocal checked
        checked += 1
        if wanted is not None and response.status_code != wanted:
            failures.append(f"{label} gave {response.status_code}, expected {wanted}")
        if wanted is None and response.status_code in REFUSED:
            failures.append(
                f"{label} (control) was refused with {response.status_code}: {response.text[:200]}"
            )

    # Calls that end the owner's own session go last, so every other control still runs.
    ordered = sorted(
        operations(app),
        key=lambda op: (op[1] in _SESSION_ENDING_PATHS, (op[0], op[1]) in _RESOURCE_ENDING),
    )
    for method, template, operation in ordered:
        if (method, template) in PUBLIC:
            continue
        path = await _fill_path(client, template, owner, cache)
        body = builder.body_for(operation)
        is_admin_route = template.startswith("/v1/admin/")
        name = f"{method} {template}"

        expect(f"(a) {name}: no credentials", await _call(client, method, path, body, {}), 401)
        if not _uses_bearer(operation):
            continue
        if is_admin_route:
            expect(
                f"(c) {name}: member", await _call(client, method, path, body, other.headers), 403
            )
            as_support = await _call(client, method, path, body, support.headers)
            if method != "GET" or (method, template) in ADMIN_ONLY_READS:
                expect(f"(d) {name}: support", as_support, 403)
            else:
                expect(f"{name}: support reading", as_support, None)
            expect(f"{name}: admin", await _call(client, method, path, body, admin.headers), None)
        elif _names_owned_resource(template, body):
            as_other = await _call(client, method, path, body, other.headers)
            expect(f"(b) {name}: another member", as_other, 404)
            as_owner = await _call(client, method, path, body, owner.headers)
            expect(f"{name}: the owner", as_owner, None)
            ownership_checked.append(name)
    assert checked > 0
    # The body-borne ids are really exercised (a transfer names its source in the body).
    assert "POST /v1/transfers" in ownership_checked, ownership_checked
    assert not failures, "\n".join(failures)


_SESSION_ENDING_PATHS = {"/v1/auth/logout", "/v1/auth/logout-all", "/v1/auth/password"}
# Calls that delete a resource other calls name: after them.
_RESOURCE_ENDING = {("DELETE", "/v1/webhook-endpoints/{endpoint_id}")}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The owner's webhook endpoint points at loopback (see `_own_endpoint`).
    return {"webhook_allow_private": True}
