"""Lockout under concurrency, over real HTTP against a real server process.

Twenty wrong passwords and the right one fired at once at one user (threshold 5): at most
five passwords are checked (audit reason `bad_password`), every other attempt is refused
as locked without its password being checked, the right password is refused too, and the
user is still locked afterwards. PostgreSQL runs two workers, so the attempts race across
processes as well.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from banking.audit.models import AuditEvent
from banking.identity.models import User
from tests.databases import ON_POSTGRES
from tests.factories import PASSWORD
from tests.server import Server

pytestmark = pytest.mark.slow

WRONG = 20
THRESHOLD = 5


async def _signup(http: httpx.AsyncClient, email: str) -> None:
    response = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Lock",
            "last_name": "Tester",
            "date_of_birth": "1980-01-01",
        },
    )
    assert response.status_code == 201, response.text


async def _login_reasons(database_url: str, user_id: uuid.UUID) -> tuple[Counter[str], User]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(AuditEvent.outcome, AuditEvent.details).where(
                    AuditEvent.event_type == "auth.login", AuditEvent.actor_id == user_id
                )
            )
            reasons = Counter(
                json.loads(details).get("reason", outcome) for outcome, details in rows
            )
            user = (await connection.execute(select(User).where(User.id == user_id))).one()
    finally:
        await engine.dispose()
    return reasons, user  # type: ignore[return-value]


async def _fire(base_url: str, email: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=WRONG + 1, max_keepalive_connections=WRONG + 1)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await _signup(http, email)
        # Open every connection first, so that the logins leave in one burst.
        await asyncio.gather(*(http.get("/v1/health/live") for _ in range(WRONG + 1)))
        # The right password goes last: when a success completes before the other
        # attempts have even arrived, it rightly starts the count again.
        passwords = [f"Wrong-Guess-{index}-Xylophone" for index in range(WRONG)] + [PASSWORD]
        return await asyncio.gather(
            *(
                http.post("/v1/auth/login", json={"email": email, "password": password})
                for password in passwords
            )
        )


def test_concurrent_logins_check_at_most_threshold_passwords_and_leave_the_user_locked(
    database_url: str, tmp_path: Path
) -> None:
    email = f"locked-{uuid.uuid4().hex[:8]}@example.com"
    with Server(
        database_url,
        workers=2 if ON_POSTGRES else 1,
        log_path=tmp_path / "server.log",
        LOCKOUT_THRESHOLD=str(THRESHOLD),
        PASSWORD_HASH_QUEUE="100",
    ) as server:
        responses = asyncio.run(_fire(server.base_url, email))
        statuses = [response.status_code for response in responses]
        assert statuses == [401] * (WRONG + 1), (statuses, server.logs())
        assert {response.json()["code"] for response in responses} == {"invalid_credentials"}
        # The right password, now, sequentially: still refused.
        after = httpx.post(
            f"{server.base_url}/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert after.status_code == 401

    engine_url = database_url
    user_id = asyncio.run(_user_id(engine_url, email))
    reasons, user = asyncio.run(_login_reasons(engine_url, user_id))
    assert reasons["bad_password"] <= THRESHOLD, reasons
    assert reasons["bad_password"] + reasons["locked"] == WRONG + 2, reasons
    assert set(reasons) <= {"bad_password", "locked"}, reasons
    assert user.locked_until is not None
    assert user.locked_until > dt.datetime.now(dt.UTC)


async def _user_id(database_url: str, email: str) -> uuid.UUID:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            found: uuid.UUID = (
                await connection.execute(select(User.id).where(User.email == email))
            ).scalar_one()
    finally:
        await engine.dispose()
    return found
