"""The typed client against scripted responses (httpx.MockTransport): tokens, retries with
the same idempotency key, problem+json mapped to typed errors, pagination."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from banking import client as bank
from banking.client import AsyncBankingClient, BankingClient

Handler = Callable[[httpx.Request], httpx.Response]


def tokens(n: int, expires_in: int = 900) -> dict[str, Any]:
    return {
        "access_token": f"access-{n}",
        "refresh_token": f"refresh-{n}",
        "token_type": "bearer",
        "expires_in": expires_in,
    }


def problem(status: int, code: str, detail: str = "nope", **extra: Any) -> httpx.Response:
    body = {
        "type": f"urn:banking:problem:{code}",
        "title": "t",
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": "req-1",
        **extra,
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def in_flight() -> httpx.Response:
    response = problem(409, "idempotency_key_in_flight", "still processing")
    response.headers["Retry-After"] = "1"
    return response


MOVEMENT = {
    "id": "entry-1",
    "kind": "deposit",
    "status": "posted",
    "account_id": "acc-1",
    "amount": 500,
    "currency": "USD",
    "balance_after": 500,
    "description": None,
    "created_at": "2025-01-02T03:04:05Z",
}
ACCOUNT = {
    "id": "acc-1",
    "number": "123456789012",
    "type": "checking",
    "currency": "USD",
    "status": "active",
    "balance": 0,
    "available_balance": 0,
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A scripted server: routes by (method, path) and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.refresh_count = 0

    def on(self, method: str, path: str, *handlers: Handler) -> None:
        self.routes.setdefault((method, path), []).extend(handlers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if (
            request.url.path == "/v1/auth/refresh"
            and (request.method, request.url.path) not in self.routes
        ):
            self.refresh_count += 1
            return httpx.Response(200, json=tokens(1 + self.refresh_count))
        if request.url.path == "/v1/auth/login":
            return httpx.Response(200, json=tokens(1))
        handlers = self.routes[(request.method, request.url.path)]
        # The last handler answers every request after the scripted ones.
        return handlers.pop(0)(request) if len(handlers) > 1 else handlers[0](request)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def sessions_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


def only_token(n: int) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer access-{n}":
            return problem(401, "invalid_token", "The access token is invalid or expired.")
        return httpx.Response(200, json=[])

    return handler


def make(server: Recorder, clock: Clock | None = None, **options: Any) -> BankingClient:
    sleeps: list[float] = []
    client = BankingClient(
        "http://bank.test",
        transport=httpx.MockTransport(server),
        clock=clock or Clock(),
        sleep=sleeps.append,
        **options,
    )
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


class TestTokenHandling:
    def test_login_keeps_the_tokens_and_sends_the_access_token(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", sessions_ok)
        with make(server) as client:
            client.login("ada@example.com", "pw")
            client.sessions()
        assert client.access_token == "access-1"
        assert server.requests[-1].headers["authorization"] == "Bearer access-1"

    def test_the_access_token_is_refreshed_shortly_before_it_expires(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", sessions_ok)
        clock = Clock()
        with make(server, clock, refresh_margin_s=30) as client:
            client.login("ada@example.com", "pw")
            clock.now += 900 - 31
            client.sessions()
            assert server.refresh_count == 0
            assert server.requests[-1].headers["authorization"] == "Bearer access-1"
            clock.now += 2
            client.sessions()
        assert server.paths()[-2:] == ["POST /v1/auth/refresh", "GET /v1/auth/sessions"]
        assert json.loads(server.requests[-2].content) == {"refresh_token": "refresh-1"}
        assert server.requests[-1].headers["authorization"] == "Bearer access-2"
        assert client.refresh_token == "refresh-2"

    def test_a_401_invalid_token_is_refreshed_once_and_the_request_repeated(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", only_token(2))
        with make(server) as client:
            client.login("ada@example.com", "pw")
            assert client.sessions() == []
        assert server.paths()[1:] == [
            "GET /v1/auth/sessions",
            "POST /v1/auth/refresh",
            "GET /v1/auth/sessions",
        ]

    def test_a_second_401_after_refreshing_is_raised_not_looped(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", only_token(99))
        with make(server) as client:
            client.login("ada@example.com", "pw")
            with pytest.raises(bank.InvalidToken) as caught:
                client.sessions()
        assert server.refresh_count == 1
        assert caught.value.status == 401

    def test_a_refused_refresh_forgets_the_tokens_and_raises(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", only_token(2))
        server.on("POST", "/v1/auth/refresh", lambda r: problem(401, "invalid_refresh_token"))
        with make(server) as client:
            client.login("ada@example.com", "pw")
            with pytest.raises(bank.InvalidRefreshToken):
                client.sessions()
            assert client.access_token is None
            assert client.refresh_token is None

    def test_wrong_credentials_are_not_answered_with_a_refresh(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", lambda r: problem(401, "unauthorized"))
        with make(server) as client:
            client.login("ada@example.com", "pw")
            with pytest.raises(bank.Unauthorized):
                client.sessions()
        assert server.refresh_count == 0

    def test_logout_forgets_the_tokens(self) -> None:
        server = Recorder()
        server.on("POST", "/v1/auth/logout", lambda r: httpx.Response(204))
        with make(server) as client:
            client.login("ada@example.com", "pw")
            client.logout()
        assert client.access_token is None

    async def test_concurrent_async_requests_share_one_refresh(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/auth/sessions", only_token(2))
        clock = Clock()
        async with AsyncBankingClient(
            "http://bank.test", transport=httpx.MockTransport(server), clock=clock
        ) as client:
            await client.login("ada@example.com", "pw")
            clock.now += 10_000
            results = await asyncio.gather(*(client.sessions() for _ in range(5)))
        assert results == [[]] * 5
        # A second refresh would present a rotated token: the server would revoke the session.
        assert server.refresh_count == 1


class TestIdempotencyKeys:
    def test_every_money_moving_post_gets_its_own_uuid4_key(self) -> None:
        server = Recorder()
        server.on(
            "POST", "/v1/accounts/acc-1/deposits", lambda r: httpx.Response(201, json=MOVEMENT)
        )
        with make(server) as client:
            first = client.deposit("acc-1", 500)
            second = client.deposit("acc-1", 500)
        keys = [r.headers["idempotency-key"] for r in server.requests]
        assert len(set(keys)) == 2
        assert all(uuid.UUID(key).version == 4 for key in keys)
        assert (first.idempotency_key, second.idempotency_key) == tuple(keys)

    def test_a_key_given_by_the_caller_is_sent_and_replay_is_reported(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/transfers",
            lambda r: httpx.Response(201, json=MOVEMENT, headers={"Idempotent-Replayed": "true"}),
        )
        with make(server) as client:
            result = client.transfer(
                "acc-1", 500, target_account_number="1234", idempotency_key="k-1"
            )
        assert server.requests[0].headers["idempotency-key"] == "k-1"
        assert result.replayed is True
        assert json.loads(server.requests[0].content) == {
            "source_account_id": "acc-1",
            "target_account_number": "1234",
            "amount": 500,
        }

    def test_a_network_failure_is_retried_with_the_same_key(self) -> None:
        def lost(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("lost", request=request)

        server = Recorder()
        server.on("POST", "/v1/transfers", lost, lambda r: httpx.Response(201, json=MOVEMENT))
        with make(server) as client:
            result = client.transfer("acc-1", 500, target_account_id="acc-2")
        keys = [r.headers["idempotency-key"] for r in server.requests]
        assert len(keys) == 2
        assert keys[0] == keys[1] == result.idempotency_key
        assert client.sleeps == [0.2]  # type: ignore[attr-defined]

    def test_backoff_after_network_failures_is_capped(self) -> None:
        def lost(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        server = Recorder()
        server.on(
            "POST", "/v1/transfers", *([lost] * 8), lambda r: httpx.Response(201, json=MOVEMENT)
        )
        with make(server, retries=8, backoff_s=0.1) as client:
            client.transfer("acc-1", 500, target_account_id="acc-2")
        keys = {r.headers["idempotency-key"] for r in server.requests}
        assert len(server.requests) == 9
        assert len(keys) == 1
        assert client.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]  # type: ignore[attr-defined]

    def test_a_database_unavailable_503_is_retried_with_the_same_key(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/transfers",
            lambda r: problem(503, "database_unavailable"),
            lambda r: httpx.Response(201, json=MOVEMENT),
        )
        with make(server) as client:
            result = client.transfer("acc-1", 500, target_account_id="acc-2")
        keys = [r.headers["idempotency-key"] for r in server.requests]
        assert keys == [result.idempotency_key] * 2

    def test_a_503_is_retried_with_the_same_key_after_retry_after(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/accounts/acc-1/withdrawals",
            lambda r: httpx.Response(
                503, json={"code": "service_unavailable"}, headers={"Retry-After": "3"}
            ),
            lambda r: httpx.Response(201, json=MOVEMENT),
        )
        with make(server) as client:
            client.withdraw("acc-1", 500)
        keys = {r.headers["idempotency-key"] for r in server.requests}
        assert len(server.requests) == 2
        assert len(keys) == 1
        assert client.sleeps == [3.0]  # type: ignore[attr-defined]

    def test_a_key_still_in_flight_is_asked_again_with_the_same_key(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/transfers",
            lambda r: in_flight(),
            lambda r: httpx.Response(201, json=MOVEMENT, headers={"Idempotent-Replayed": "true"}),
        )
        with make(server) as client:
            result = client.transfer("acc-1", 500, target_account_number="123456789012")
        keys = {r.headers["idempotency-key"] for r in server.requests}
        assert len(server.requests) == 2
        assert keys == {result.idempotency_key}
        assert result.replayed
        assert client.sleeps == [1.0]  # type: ignore[attr-defined]

    def test_a_key_in_flight_for_too_long_raises_its_typed_error(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/transfers",
            lambda r: in_flight(),
        )
        with make(server, retries=1) as client, pytest.raises(bank.IdempotencyKeyInFlight):
            client.transfer("acc-1", 500, target_account_id="acc-2")
        assert len(server.requests) == 2

    def test_other_conflicts_are_not_retried(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/transfers",
            lambda r: problem(409, "insufficient_funds", entry_id="e1"),
        )
        with make(server) as client, pytest.raises(bank.InsufficientFunds):
            client.transfer("acc-1", 500, target_account_id="acc-2")
        assert len(server.requests) == 1

    def test_retries_stop_after_the_configured_number_and_raise(self) -> None:
        def lost(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("down", request=request)

        server = Recorder()
        server.on("POST", "/v1/transfers", lost)
        with make(server, retries=2) as client, pytest.raises(httpx.ConnectError):
            client.transfer("acc-1", 500, target_account_id="acc-2")
        assert len(server.requests) == 3

    def test_a_post_without_a_key_is_never_retried(self) -> None:
        def lost(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("lost", request=request)

        server = Recorder()
        server.on("POST", "/v1/accounts", lost)
        with make(server) as client, pytest.raises(httpx.ReadTimeout):
            client.open_account("checking", "USD")
        assert len(server.requests) == 1
        assert "idempotency-key" not in server.requests[0].headers

    def test_card_network_calls_send_the_network_key_not_the_token(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/card-authorizations",
            lambda r: httpx.Response(201, json={"id": "auth-1", "status": "approved"}),
        )
        with make(server, network_key="net-key") as client:
            client.login("ada@example.com", "pw")
            result = client.authorize_card(
                card_number="4000000000000002",
                exp_month=1,
                exp_year=2030,
                cvv="123",
                amount=1250,
                currency="USD",
                merchant_name="Cafe",
                merchant_category="5814",
            )
        request = server.requests[-1]
        assert request.headers["x-network-key"] == "net-key"
        assert "authorization" not in request.headers
        assert result.status == "approved"
        assert result.idempotency_key


class TestErrorMapping:
    @pytest.mark.parametrize(
        ("status", "code", "expected"),
        [
            (409, "insufficient_funds", bank.InsufficientFunds),
            (422, "insufficient_funds", bank.InsufficientFunds),
            (409, "account_frozen", bank.AccountFrozen),
            (404, "not_found", bank.NotFound),
            (409, "email_taken", bank.EmailTaken),
            (422, "idempotency_key_reused", bank.IdempotencyKeyReused),
            (403, "insufficient_role", bank.InsufficientRole),
            (409, "idempotency_key_in_flight", bank.IdempotencyKeyInFlight),
            (409, "account_status_conflict", bank.AccountStatusConflict),
            (409, "something_new", bank.Conflict),
            (418, "teapot", bank.ApiError),
        ],
    )
    def test_each_problem_code_raises_its_error_class(
        self, status: int, code: str, expected: type[bank.ApiError]
    ) -> None:
        server = Recorder()
        server.on("GET", "/v1/accounts/acc-1", lambda r: problem(status, code, "Detail here."))
        with make(server) as client, pytest.raises(expected) as caught:
            client.get_account("acc-1")
        error = caught.value
        assert type(error) is expected
        assert (error.status, error.code, error.detail, error.request_id) == (
            status,
            code,
            "Detail here.",
            "req-1",
        )

    def test_validation_errors_list_each_field(self) -> None:
        errors = [{"field": "amount", "in": "body", "reason": "must be positive", "type": "x"}]
        server = Recorder()
        server.on(
            "POST",
            "/v1/accounts/acc-1/deposits",
            lambda r: problem(422, "validation_error", "Invalid fields: amount.", errors=errors),
        )
        with make(server) as client, pytest.raises(bank.ValidationFailed) as caught:
            client.deposit("acc-1", 0)
        assert caught.value.errors == [bank.FieldError("amount", "must be positive", "body", "x")]
        assert caught.value.idempotency_key == server.requests[0].headers["idempotency-key"]

    def test_rate_limited_carries_retry_after(self) -> None:
        server = Recorder()
        server.on(
            "POST",
            "/v1/auth/signup",
            lambda r: httpx.Response(
                429,
                json={"code": "rate_limited", "detail": "slow down"},
                headers={"Retry-After": "17"},
            ),
        )
        with make(server) as client, pytest.raises(bank.RateLimited) as caught:
            client.signup(
                "a@example.com", "pw", first_name="A", last_name="B", date_of_birth="1990-01-01"
            )
        assert caught.value.retry_after == 17.0

    def test_a_server_error_without_json_is_still_typed(self) -> None:
        server = Recorder()
        server.on("GET", "/v1/accounts", lambda r: httpx.Response(500, text="boom"))
        with make(server) as client, pytest.raises(bank.ServerError) as caught:
            client.list_accounts()
        assert caught.value.status == 500
        assert caught.value.code == "http_500"

    def test_a_success_with_the_wrong_shape_is_an_unexpected_response(self) -> None:
        server = Recorder()
        server.on(
            "GET",
            "/v1/accounts/acc-1",
            lambda r: httpx.Response(200, json={**ACCOUNT, "balance": "10"}),
        )
        with make(server) as client, pytest.raises(bank.UnexpectedResponse):
            client.get_account("acc-1")


class TestPagination:
    def test_transactions_follow_the_cursor_until_the_last_page(self) -> None:
        def item(n: int) -> dict[str, Any]:
            return {
                "id": f"t{n}",
                "kind": "deposit",
                "amount": n,
                "balance_after": n,
                "status": "posted",
                "created_at": "2026-01-02T03:04:05Z",
            }

        def page(request: httpx.Request) -> httpx.Response:
            if request.url.params.get("cursor") == "c2":
                return httpx.Response(200, json={"items": [item(3)], "next_cursor": None})
            return httpx.Response(200, json={"items": [item(1), item(2)], "next_cursor": "c2"})

        server = Recorder()
        server.on("GET", "/v1/accounts/acc-1/transactions", page)
        with make(server) as client:
            found = list(client.transactions("acc-1", limit=2, status="posted"))
        assert [t.id for t in found] == ["t1", "t2", "t3"]
        assert found[0].created_at is not None
        assert found[0].created_at.tzinfo is not None
        assert [r.url.params.get("cursor") for r in server.requests] == [None, "c2"]
        assert server.requests[0].url.params["status"] == "posted"

    async def test_the_async_client_walks_the_same_pages(self) -> None:
        def page(request: httpx.Request) -> httpx.Response:
            more = request.url.params.get("cursor") is None
            items = [
                {
                    "id": "x" if more else "y",
                    "kind": "transfer",
                    "amount": -5,
                    "balance_after": 0,
                    "status": "posted",
                    "created_at": None,
                }
            ]
            return httpx.Response(200, json={"items": items, "next_cursor": "n" if more else None})

        server = Recorder()
        server.on("GET", "/v1/accounts/acc-1/transactions", page)
        async with AsyncBankingClient(
            "http://bank.test", transport=httpx.MockTransport(server)
        ) as client:
            found = [t.id async for t in client.transactions("acc-1")]
        assert found == ["x", "y"]


class TestDemoAmounts:
    @pytest.mark.parametrize(
        ("minor", "currency", "text"),
        [
            (123456, "USD", "1,234.56 USD"),
            (-5, "EUR", "-0.05 EUR"),
            (1235, "JPY", "1,235 JPY"),
            (1001, "KWD", "1.001 KWD"),
            (0, "GBP", "0.00 GBP"),
        ],
    )
    def test_minor_units_are_formatted_exactly(self, minor: int, currency: str, text: str) -> None:
        from banking.demo import format_minor

        assert format_minor(minor, currency) == text
