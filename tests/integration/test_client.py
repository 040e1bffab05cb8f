"""The async client against the real app in-process (ASGITransport): the auth calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from banking import client as bank
from banking.client import AsyncBankingClient
from tests.factories import PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(app: FastAPI, clock: Clock) -> AsyncIterator[AsyncBankingClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 52000))
    async with AsyncBankingClient("http://testserver", transport=transport, clock=clock) as api:
        yield api


async def sign_up(api: AsyncBankingClient, email: str | None = None) -> bank.User:
    return await api.signup(
        email or f"client-{uuid.uuid4().hex[:8]}@example.com",
        PASSWORD,
        first_name="Grace",
        last_name="Hopper",
        date_of_birth="1985-12-09",
    )


class TestSignupAndLogin:
    async def test_signup_returns_the_member_and_login_keeps_the_tokens(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        assert user.role == "member"
        tokens = await api.login(user.email, PASSWORD)
        assert tokens.token_type == "bearer"
        assert tokens.expires_in > 0
        assert api.access_token == tokens.access_token

    async def test_a_taken_email_raises_email_taken(self, api: AsyncBankingClient) -> None:
        user = await sign_up(api)
        with pytest.raises(bank.EmailTaken) as caught:
            await sign_up(api, user.email)
        assert caught.value.status == 409
        assert caught.value.request_id

    async def test_a_wrong_password_raises_invalid_credentials(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        with pytest.raises(bank.InvalidCredentials):
            await api.login(user.email, PASSWORD + "x")

    async def test_invalid_fields_are_listed(self, api: AsyncBankingClient) -> None:
        with pytest.raises(bank.ValidationFailed) as caught:
            await api.signup(
                "not-an-email", PASSWORD, first_name="A", last_name="B", date_of_birth="1990-01-01"
            )
        assert [error.field for error in caught.value.errors] == ["email"]


class TestSessions:
    async def test_sessions_list_the_current_one_and_revoke_another(
        self, api: AsyncBankingClient, app: FastAPI
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 52001))
        async with AsyncBankingClient("http://testserver", transport=transport) as phone:
            await phone.login(user.email, PASSWORD)
            sessions = await api.sessions()
            assert len(sessions) == 2
            assert [s.current for s in sessions].count(True) == 1
            other = next(s for s in sessions if not s.current)
            await api.revoke_session(other.id)
            # The phone's access token dies at once and its refresh token with it.
            with pytest.raises(bank.Unauthorized):
                await phone.sessions()
        assert [s.id for s in await api.sessions()] != [other.id]

    async def test_logout_ends_the_session_and_forgets_the_tokens(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        await api.logout()
        assert api.access_token is None
        with pytest.raises(bank.InvalidToken):
            await api.sessions()


class TestTokenRefresh:
    async def test_an_expiring_token_is_refreshed_before_the_next_call(
        self, api: AsyncBankingClient, clock: Clock
    ) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        clock.now += tokens.expires_in
        assert len(await api.sessions()) == 1
        assert api.refresh_token != tokens.refresh_token

    async def test_a_rejected_access_token_is_refreshed_once(
        self, api: AsyncBankingClient, app: FastAPI
    ) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        api.set_tokens(bank.Tokens("not-a-jwt", tokens.refresh_token, "bearer", tokens.expires_in))
        assert len(await api.sessions()) == 1
        assert api.access_token not in {"not-a-jwt", tokens.access_token}

    async def test_a_reused_refresh_token_is_refused(self, api: AsyncBankingClient) -> None:
        user = await sign_up(api)
        tokens = await api.login(user.email, PASSWORD)
        await api.refresh()
        with pytest.raises(bank.InvalidRefreshToken):
            await api.refresh(tokens.refresh_token)


class TestHealth:
    async def test_health_reports_ready(self, api: AsyncBankingClient) -> None:
        assert (await api.health())["status"] == "ok"

    async def test_an_endpoint_that_does_not_exist_raises_not_found(
        self, api: AsyncBankingClient
    ) -> None:
        user = await sign_up(api)
        await api.login(user.email, PASSWORD)
        with pytest.raises(bank.NotFound):
            await api.get_account(str(uuid.uuid4()))
