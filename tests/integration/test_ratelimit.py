from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from banking.core.ratelimit import RateLimiter, rate_limit
from tests.cards_support import NETWORK, authorize, funded_card, payment
from tests.factories import Member, keyed, make_member, open_account, signup

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "").strip()
STORAGES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not TEST_REDIS_URL,
            reason="TEST_REDIS_URL is not set (CI sets it to redis://127.0.0.1:6379/15)",
        ),
    ),
]


@pytest.fixture(params=STORAGES)
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    values: dict[str, Any] = {
        "rate_limits_enabled": True,
        "rate_limit_signup": "2/minute",
        "rate_limit_login": "2/minute",
        "rate_limit_refresh": "2/minute",
        "rate_limit_money": "3/minute",
        "rate_limit_network": "3/minute",
        # A namespace per test: parallel runs sharing one Redis do not count each other.
        "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}",
    }
    if request.param == "redis":
        values["redis_url"] = TEST_REDIS_URL
    return values


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


class TestPerIpLimits:
    async def test_signup_beyond_the_limit_is_429_with_retry_after(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        expected = "redis" if app.state.settings.redis_url else "memory"
        assert type(app.state.rate_limiter.storage).__name__.lower().startswith(expected)
        assert (await signup(client)).status_code == 201
        assert (await signup(client, password="short")).status_code == 422
        _assert_rate_limited(await signup(client))

    async def test_login_limit_counts_per_ip(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        body = {"email": "nobody@example.com", "password": "Not-The-Password-123"}
        for _ in range(2):
            assert (await client.post("/v1/auth/login", json=body)).status_code == 401
        _assert_rate_limited(await client.post("/v1/auth/login", json=body))
        async with _client(app, "198.51.100.9") as elsewhere:
            assert (await elsewhere.post("/v1/auth/login", json=body)).status_code == 401

    async def test_refresh_beyond_the_limit_is_429(self, client: httpx.AsyncClient) -> None:
        for _ in range(2):
            response = await client.post("/v1/auth/refresh", json={"refresh_token": "x"})
            assert response.status_code == 401
        _assert_rate_limited(await client.post("/v1/auth/refresh", json={"refresh_token": "x"}))


class TestCardNetworkLimit:
    async def test_network_requests_are_counted_per_address_before_the_key_check(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        member = await make_member(client)
        _, card = await funded_card(client, member)
        assert (await authorize(client, card, 1_00)).json()["status"] == "approved"
        # Guessing the network key counts too.
        wrong_key = await client.post(
            "/v1/card-authorizations", json=payment(card), headers={"X-Network-Key": "guess"}
        )
        assert wrong_key.status_code == 401
        assert (
            await client.get(f"/v1/card-authorizations/{uuid.uuid4()}", headers=NETWORK)
        ).status_code == 404
        _assert_rate_limited(await authorize(client, card, 1_00))
        _assert_rate_limited(
            await client.post(f"/v1/card-authorizations/{uuid.uuid4()}/void", headers=NETWORK)
        )
        async with _client(app, "198.51.100.9") as gateway:
            assert (await authorize(gateway, card, 1_00)).json()["status"] == "approved"
        # Member routes are not counted against the network limit.
        assert (await client.get("/v1/cards", headers=member.headers)).status_code == 200


class TestPerUserLimits:
    async def test_the_money_limit_counts_per_user(self, app: FastAPI) -> None:
        async with (
            _client(app, "198.51.100.1") as first_ip,
            _client(app, "198.51.100.2") as second_ip,
        ):
            alice = await make_member(first_ip)
            bob = await make_member(second_ip)
            alice_account = await open_account(first_ip, alice)
            bob_account = await open_account(first_ip, bob)

            def deposit(
                http: httpx.AsyncClient, member: Member, account: dict[str, Any], **headers: str
            ) -> Any:
                return http.post(
                    f"/v1/accounts/{account['id']}/deposits",
                    json={"amount": 1},
                    headers=keyed({**member.headers, **headers}),
                )

            for http in (first_ip, second_ip, first_ip):
                assert (await deposit(http, alice, alice_account)).status_code == 201
            # A new IP does not reset a per-user limit; another user has their own count.
            _assert_rate_limited(await deposit(second_ip, alice, alice_account))
            assert (await deposit(first_ip, bob, bob_account)).status_code == 201
            # Without a token the caller is refused before being counted.
            anonymous = await first_ip.post(
                f"/v1/accounts/{bob_account['id']}/deposits", json={"amount": 1}
            )
            assert anonymous.status_code == 401

    def test_an_unknown_limit_name_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="unknown rate limit"):
            rate_limit("everything")


class TestSwitches:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"rate_limits_enabled": False, "rate_limit_signup": "1/minute"}

    async def test_rate_limits_enabled_false_turns_limits_off(
        self, client: httpx.AsyncClient
    ) -> None:
        for _ in range(5):
            assert (await signup(client, password="short")).status_code == 422


class TestStorageFailure:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "rate_limits_enabled": True,
            "rate_limit_signup": "1/minute",
            "redis_url": "redis://127.0.0.1:1/0",
        }

    async def test_an_unreachable_redis_lets_requests_through(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        assert isinstance(app.state.rate_limiter, RateLimiter)
        for _ in range(3):
            assert (await signup(client, password="short")).status_code == 422


async def test_password_change_guesses_are_limited_per_user(client: httpx.AsyncClient) -> None:
    member = await make_member(client)
    body = {"current_password": "Wrong-Password-123", "new_password": "Velvet-Orchard-Compass-77"}
    for _ in range(2):
        response = await client.post("/v1/auth/password", headers=member.headers, json=body)
        assert response.status_code == 401
    _assert_rate_limited(await client.post("/v1/auth/password", headers=member.headers, json=body))
