"""Forged pagination cursors on every paginated route: a 422 `invalid_cursor`, never a 500.

The routes are found in the OpenAPI schema (every operation with a `cursor` parameter), so
a new list is covered without touching this file. Hypothesis sends random cursors: random
text in the cursor alphabet, base64url of random JSON, cursors shaped like ours with
random parts, and well-formed cursors of every other list. Hand-picked cases pin the
forgeries that used to reach the database: a time without a zone, wrong types, huge
integers, another route's cursor.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from banking.core.db import Database
from banking.core.pagination import MAX_CURSOR_LENGTH, encode_cursor, route_tag
from banking.ledger import cursor as ledger_cursors
from tests.cards_support import NETWORK, payment
from tests.conftest import make_settings
from tests.databases import DatabaseFactory
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = pytest.mark.slow

LEDGER_KINDS = ("posted", "declined", "entries", "accounts")
NAIVE_TIME = "2026-01-02T03:04:05"
AWARE_TIME = "2026-01-02T03:04:05+00:00"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json_cursor(value: Any) -> str:
    return _b64(json.dumps(value).encode())


class Bank:
    """A member with an account, a card and a card payment, a webhook endpoint, and an
    admin."""

    def __init__(self, http: httpx.Client, database_url: str) -> None:
        self.http = http
        self.member = self._login(self._signup())
        account = http.post("/v1/accounts", json={"type": "checking"}, headers=self.member)
        assert account.status_code == 201, account.text
        self.account_id = account.json()["id"]
        deposit = http.post(
            f"/v1/accounts/{self.account_id}/deposits",
            json={"amount": 100_00},
            headers={**self.member, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert deposit.status_code == 201, deposit.text
        card = http.post(
            f"/v1/accounts/{self.account_id}/cards", json={"type": "virtual"}, headers=self.member
        )
        assert card.status_code == 201, card.text
        self.card_id = card.json()["id"]
        paid = http.post(
            "/v1/card-authorizations",
            json=payment(card.json(), 5_00),
            headers={**NETWORK, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert paid.status_code == 201, paid.text
        # Nothing listens on port 9: deliveries to it fail at once, on this machine.
        endpoint = http.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/hooks"},
            headers=self.member,
        )
        assert endpoint.status_code == 201, endpoint.text
        self.endpoint_id = endpoint.json()["id"]
        admin_email = self._signup()
        asyncio.run(self._promote(database_url, admin_email))
        self.admin = self._login(admin_email)

    def _signup(self) -> str:
        email = f"cursor-{uuid.uuid4().hex[:10]}@example.com"
        response = self.http.post(
            "/v1/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "first_name": "Cursor",
                "last_name": "Tester",
                "date_of_birth": "1980-01-01",
            },
        )
        assert response.status_code == 201, response.text
        return email

    def _login(self, email: str) -> dict[str, str]:
        response = self.http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    @staticmethod
    async def _promote(database_url: str, email: str) -> None:
        from banking.identity import service as identity
        from banking.identity.models import Role

        db = Database(make_settings(database_url))
        try:
            async with db.sessionmaker() as session:
                await identity.set_role(session, email=email, role=Role.admin)
        finally:
            await db.dispose()

    def url(self, path: str) -> str:
        return (
            path.replace("{account_id}", self.account_id)
            .replace("{card_id}", self.card_id)
            .replace("{endpoint_id}", self.endpoint_id)
        )

    def headers(self, path: str) -> dict[str, str]:
        return self.admin if path.startswith("/v1/admin/") else self.member


def _paginated_paths(http: httpx.Client) -> list[str]:
    return sorted(
        path
        for path, operations in http.get("/openapi.json").json()["paths"].items()
        for method, operation in operations.items()
        if method == "get"
        and any(parameter["name"] == "cursor" for parameter in operation.get("parameters", []))
    )


@pytest.fixture(scope="module")
def bank(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Bank, list[str]]]:
    url = database_factory.new_url()
    log_path: Path = tmp_path_factory.mktemp("cursor-fuzz") / "server.log"
    try:
        with (
            Server(url, log_path=log_path, WEBHOOK_ALLOW_PRIVATE="true") as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            yield Bank(http, url), _paginated_paths(http)
    finally:
        database_factory.drop(url)


def _variants(path: str) -> list[dict[str, str]]:
    """Query variants that reach different cursor decoders on the same route."""
    if path.endswith("/transactions"):
        return [{}, {"status": "declined"}]
    return [{}]


# The ledger-style cursor kind each list issues (the other lists use tagged key lists).
OWN_KIND = {
    ("/v1/accounts/{account_id}/transactions", ""): "posted",
    ("/v1/accounts/{account_id}/transactions", "declined"): "declined",
    ("/v1/admin/transactions", ""): "entries",
    ("/v1/admin/transactions", "declined"): "entries",
    ("/v1/admin/accounts", ""): "accounts",
}


def _other_lists_cursors(paths: list[str], own: str, query: dict[str, str]) -> list[str]:
    forged = [
        encode_cursor(key, tag=route_tag(path))
        for path in paths
        if path != own
        for key in ([AWARE_TIME, str(uuid.uuid4())], [7], ["2026-01"])
    ]
    forged += [
        ledger_cursors.encode({"k": kind, "t": AWARE_TIME, "i": str(uuid.uuid4()), "p": 7})
        for kind in LEDGER_KINDS
        if kind != OWN_KIND.get((own, query.get("status", "")))
    ]
    return forged


def _is_own_valid_shape(cursor: str, path: str) -> bool:
    # A cursor in this route's own valid shape may legitimately answer 200.
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return False
    return isinstance(decoded, list) and decoded[:1] == [route_tag(path)]


def _check(bank: Bank, path: str, cursor: str, query: dict[str, str]) -> Any:
    response = bank.http.get(
        bank.url(path), params={**query, "cursor": cursor}, headers=bank.headers(path)
    )
    assert response.status_code < 500, (path, cursor, response.text)
    return response


def test_every_paginated_route_is_covered(bank: tuple[Bank, list[str]]) -> None:
    _, paths = bank
    assert len(paths) >= 8, paths
    assert "/v1/accounts/{account_id}/transactions" in paths


@pytest.mark.parametrize(
    "forged",
    [
        [NAIVE_TIME, "00000000-0000-0000-0000-000000000001"],
        [12, 34],
        [None],
        [True],
        [2**70],
        [-(2**70)],
        [1.5],
        [{"nested": []}],
        ["2026-13"],
        {"k": "posted", "p": True},
        {"k": "posted", "p": 2**80},
        {"k": "posted", "p": "12"},
        {"k": "declined", "t": NAIVE_TIME, "i": "00000000-0000-0000-0000-000000000001"},
        {"k": "declined", "t": 5, "i": 7},
        {"k": "entries", "t": NAIVE_TIME, "i": "00000000-0000-0000-0000-000000000001"},
        {"k": "accounts", "t": NAIVE_TIME, "i": "00000000-0000-0000-0000-000000000001"},
        {"k": "accounts", "t": AWARE_TIME, "i": 12},
    ],
    ids=repr,
)
def test_hand_picked_forgeries_are_invalid_cursors_everywhere(
    bank: tuple[Bank, list[str]], forged: Any
) -> None:
    client, paths = bank
    cursors = [_json_cursor(forged)]
    if isinstance(forged, list):
        # The same key under each route's own tag: the key itself must be refused.
        cursors += [_json_cursor([route_tag(path), *forged]) for path in paths]
    for path in paths:
        for query in _variants(path):
            for cursor in cursors:
                response = _check(client, path, cursor, query)
                if response.status_code == 200 and _is_own_valid_shape(cursor, path):
                    continue  # e.g. [tag, 12] is a valid audit position
                assert response.status_code == 422, (path, forged, response.text)
                assert response.json()["code"] == "invalid_cursor", (path, forged, response.text)


def test_another_lists_cursor_is_refused(bank: tuple[Bank, list[str]]) -> None:
    client, paths = bank
    for path in paths:
        for query in _variants(path):
            for cursor in _other_lists_cursors(paths, path, query):
                response = _check(client, path, cursor, query)
                assert response.status_code == 422, (path, cursor, response.text)
                assert response.json()["code"] == "invalid_cursor"


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([NAIVE_TIME, AWARE_TIME, str(uuid.uuid4()), "2026-02", *LEDGER_KINDS]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["k", "t", "i", "p", "x"]), children, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def _cursors(draw: st.DrawFn, paths: list[str]) -> str:
    shape = draw(st.sampled_from(["text", "json", "ours", "ledger"]))
    if shape == "text":
        return draw(st.from_regex(re.compile(r"[A-Za-z0-9_-]{1,120}"), fullmatch=True))
    if shape == "json":
        return _json_cursor(draw(_json_values))
    if shape == "ours":
        tag = route_tag(draw(st.sampled_from(paths)))
        return _json_cursor([tag, *draw(st.lists(_json_values, max_size=3))])
    position = draw(st.dictionaries(st.sampled_from(["t", "i", "p"]), _json_values, max_size=3))
    return ledger_cursors.encode({**position, "k": draw(st.sampled_from(LEDGER_KINDS))})


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_cursors_on_every_paginated_route_never_fail_the_server(
    bank: tuple[Bank, list[str]], data: st.DataObject
) -> None:
    client, paths = bank
    path = data.draw(st.sampled_from(paths), label="route")
    query = data.draw(st.sampled_from(_variants(path)), label="query")
    cursor = data.draw(_cursors(paths), label="cursor")
    response = _check(client, path, cursor, query)
    assert response.status_code in (200, 422), (path, cursor, response.text)
    if response.status_code == 422:
        # Longer than the parameter's documented maxLength: refused by the schema itself.
        expected = "validation_error" if len(cursor) > MAX_CURSOR_LENGTH else "invalid_cursor"
        assert response.json()["code"] == expected, (path, cursor, response.text)
