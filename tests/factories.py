"""Small helpers that create data through the public API."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

PASSWORD = "Plum-Harbour-Lantern-42"
_counter = itertools.count(1)


def keyed(headers: dict[str, str] | None = None, key: str | None = None) -> dict[str, str]:
    """`headers` with an Idempotency-Key (a fresh one unless `key` is given): every money
    POST requires one."""
    return {**(headers or {}), "Idempotency-Key": key or str(uuid.uuid4())}


async def deposit(
    client: httpx.AsyncClient, member: Member, account_id: str, amount: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/accounts/{account_id}/deposits",
        json={"amount": amount, **body},
        headers=keyed(member.headers),
    )


async def withdraw(
    client: httpx.AsyncClient, member: Member, account_id: str, amount: int, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/accounts/{account_id}/withdrawals",
        json={"amount": amount, **body},
        headers=keyed(member.headers),
    )


@dataclass
class Member:
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def signup(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    **profile: object,
) -> httpx.Response:
    email = email or f"member{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com"
    body = {
        "email": email,
        "password": password,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1990-05-17",
        **profile,
    }
    return await client.post("/v1/auth/signup", json=body)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"email": email, "password": password})


async def make_member(
    client: httpx.AsyncClient,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    **profile: object,
) -> Member:
    response = await signup(client, email=email, password=password, **profile)
    assert response.status_code == 201, response.text
    user = response.json()
    tokens = await login(client, user["email"], password)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Member(
        email=user["email"],
        password=password,
        user_id=user["id"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def make_staff(client: httpx.AsyncClient, app: FastAPI, role: str = "admin") -> Member:
    """A member promoted to `role` through the service (the API cannot do it), logged in
    again so the new session carries the role."""
    from banking.identity import service as identity
    from banking.identity.models import Role

    member = await make_member(client)
    async with app.state.db.sessionmaker() as session:
        await identity.set_role(session, email=member.email, role=Role(role))
    return member


async def open_account(
    client: httpx.AsyncClient,
    member: Member,
    *,
    type: str = "checking",
    currency: str = "USD",
    balance_minor: int = 0,
) -> dict[str, Any]:
    """Open an account through the API, funded with a deposit when `balance_minor` > 0."""
    response = await client.post(
        "/v1/accounts", json={"type": type, "currency": currency}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    if balance_minor:
        deposit = await client.post(
            f"/v1/accounts/{account['id']}/deposits",
            json={"amount": balance_minor},
            headers=keyed(member.headers),
        )
        assert deposit.status_code == 201, deposit.text
        account["balance"] = account["available_balance"] = balance_minor
    return account
