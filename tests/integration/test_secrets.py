"""No password, hash, refresh token or access token in any log line or in any response
other than the token responses themselves."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from banking.audit.models import AuditEvent
from banking.identity.models import RefreshToken, User
from tests.factories import PASSWORD

NEW_PASSWORD = "Velvet-Orchard-Compass-77"
TOKEN_PATHS = {"/v1/auth/login", "/v1/auth/refresh"}


@pytest.mark.parametrize("settings_overrides", [{"log_level": "DEBUG"}], indirect=True)
async def test_auth_flows_never_reveal_secrets(
    client: httpx.AsyncClient, app: FastAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    responses: list[httpx.Response] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, path, **kwargs)
        responses.append(response)
        return response

    email = "ledger.keeper@example.com"
    body = {
        "email": email,
        "password": PASSWORD,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1990-05-17",
    }
    await call("POST", "/v1/auth/signup", json=body)
    await call("POST", "/v1/auth/signup", json=body)  # duplicate
    await call("POST", "/v1/auth/signup", json={**body, "email": "x@example.com", "password": 1})
    await call("POST", "/v1/auth/login", json={"email": email, "password": "Wrong-Password-99"})
    tokens = (
        await call("POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    second = (
        await call("POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    rotated = (
        await call("POST", "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    await call("POST", "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await call("GET", "/v1/auth/me", headers=headers)
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    await call("GET", "/v1/auth/me", headers=headers)
    await call("GET", "/v1/auth/sessions", headers=headers)
    await call("GET", "/v1/account-holders/me", headers=headers)
    await call(
        "POST",
        "/v1/auth/password",
        headers=headers,
        json={"current_password": "Wrong-Password-99", "new_password": NEW_PASSWORD},
    )
    await call(
        "POST",
        "/v1/auth/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    await call("GET", "/v1/auth/me", headers={"Authorization": "Bearer not.a.token"})
    await call("POST", "/v1/auth/logout", headers=headers)
    await call("GET", "/v1/test/crash")

    async with app.state.db.sessionmaker() as session:
        hashes = list((await session.execute(select(User.password_hash))).scalars())
        digests = list((await session.execute(select(RefreshToken.token_hash))).scalars())
        audit_text = " ".join(
            f"{row.details} {row.user_agent} {row.target_id}"
            for row in (await session.execute(select(AuditEvent))).scalars()
        )
    secrets = {
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "wrong password": "Wrong-Password-99",
        "jwt secret": app.state.settings.jwt_secret,
        **{f"password hash {i}": value for i, value in enumerate(hashes)},
        **{f"hash digest {i}": value.rsplit("$", 1)[-1] for i, value in enumerate(hashes)},
        **{f"refresh digest {i}": value for i, value in enumerate(digests)},
    }
    for name, bundle in (("first", tokens), ("second", second), ("rotated", rotated)):
        secrets[f"{name} access token"] = bundle["access_token"]
        secrets[f"{name} access signature"] = bundle["access_token"].rsplit(".", 1)[-1]
        secrets[f"{name} refresh token"] = bundle["refresh_token"]
    assert len(hashes) == 1
    assert len(digests) == 3

    logs = capsys.readouterr().err
    # The capture saw the logs, at the most verbose level.
    assert logging.getLogger().level == logging.DEBUG
    assert '"logger": "banking.http"' in logs
    assert "unhandled_error" in logs
    for name, secret in secrets.items():
        assert secret not in logs, f"{name} appears in the logs"
        assert secret not in audit_text, f"{name} appears in the audit log"
        for response in responses:
            is_token_response = response.request.url.path in TOKEN_PATHS and response.is_success
            if is_token_response and ("token" in name or "signature" in name):
                continue
            text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
            assert secret not in text, f"{name} appears in {response.request.url.path}"
