"""Helpers for card tests: issue a card through the API, pay with it as the network."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx

from tests.conftest import TEST_SECRETS
from tests.factories import Member, open_account

NETWORK = {"X-Network-Key": TEST_SECRETS["card_network_api_key"]}
_keys = itertools.count(1)


async def issue_card(
    client: httpx.AsyncClient, member: Member, account_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/accounts/{account_id}/cards",
        json={"type": "virtual", **body},
        headers=member.headers,
    )
    assert response.status_code == 201, response.text
    card: dict[str, Any] = response.json()
    return card


async def funded_card(
    client: httpx.AsyncClient, member: Member, *, balance_minor: int = 100_00, **body: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    account = await open_account(client, member, balance_minor=balance_minor)
    return account, await issue_card(client, member, account["id"], **body)


def payment(card: dict[str, Any], amount: int = 10_00, **changes: Any) -> dict[str, Any]:
    return {
        "card_number": card["pan"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "cvv": card["cvv"],
        "amount": amount,
        "currency": "USD",
        "merchant_name": "Corner Bookshop",
        "merchant_category": "5942",
        **changes,
    }


async def authorize(
    client: httpx.AsyncClient,
    card: dict[str, Any],
    amount: int = 10_00,
    *,
    key: str | None = None,
    **changes: Any,
) -> httpx.Response:
    headers = {**NETWORK, "Idempotency-Key": key or f"authorize-{next(_keys)}-{uuid.uuid4()}"}
    return await client.post(
        "/v1/card-authorizations", json=payment(card, amount, **changes), headers=headers
    )


async def capture(
    client: httpx.AsyncClient, authorization_id: str, amount: int, *, key: str | None = None
) -> httpx.Response:
    """Capture as the network, with a fresh Idempotency-Key unless `key` is given."""
    return await client.post(
        f"/v1/card-authorizations/{authorization_id}/capture",
        json={"amount": amount},
        headers={**NETWORK, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def approved(client: httpx.AsyncClient, card: dict[str, Any], amount: int) -> str:
    response = await authorize(client, card, amount)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "approved", response.text
    return str(response.json()["id"])


async def balance(client: httpx.AsyncClient, member: Member, account_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/accounts/{account_id}/balance", headers=member.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
