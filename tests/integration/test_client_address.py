"""Client addresses: read from the right of X-Forwarded-For behind trusted proxies only,
never a text the client picks, and no header makes the service fail."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from banking.audit.models import AuditEvent
from banking.core.config import ConfigError
from banking.identity.models import AuthSession
from tests.conftest import make_settings
from tests.factories import PASSWORD, signup
from tests.server import Server

# The test client's peer address is 203.0.113.7 (see tests/conftest.py).
BEHIND_PROXY = {"trusted_proxies": "203.0.113.0/28, 10.0.0.0/8"}


async def _signup_address(app: FastAPI, client: httpx.AsyncClient, forwarded: str | None) -> str:
    email = f"addr-{uuid.uuid4().hex[:10]}@example.com"
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    response = await client.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "date_of_birth": "1990-05-17",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    async with app.state.db.sessionmaker() as session:
        ip = (
            await session.execute(
                select(AuditEvent.ip)
                .where(AuditEvent.event_type == "user.signup")
                .order_by(AuditEvent.id.desc())
                .limit(1)
            )
        ).scalar_one()
    assert ip is not None
    return ip


@pytest.mark.parametrize("settings_overrides", [BEHIND_PROXY], indirect=True)
class TestBehindTrustedProxies:
    @pytest.mark.parametrize(
        ("forwarded", "expected"),
        [
            # The leftmost entry is whatever the client wrote: the rightmost untrusted wins.
            ("6.6.6.6, 198.51.100.9", "198.51.100.9"),
            ("6.6.6.6, 198.51.100.9, 10.1.2.3, 203.0.113.2", "198.51.100.9"),
            ("198.51.100.9:4711", "198.51.100.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("fe80::1%eth0-with-a-long-zone-name", "fe80::1"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
            # Not an address: ignored, the peer is used.
            ("6.6.6.6, <script>alert(1)</script>", "203.0.113.7"),
            ("not-an-ip", "203.0.113.7"),
            ("", "203.0.113.7"),
            ("1.2.3.4, " + "x" * 5000, "203.0.113.7"),
            (", ".join(["10.0.0.1"] * 500), "203.0.113.7"),
        ],
    )
    async def test_the_address_is_the_rightmost_untrusted_entry_or_the_peer(
        self, app: FastAPI, client: httpx.AsyncClient, forwarded: str, expected: str
    ) -> None:
        assert await _signup_address(app, client, forwarded) == expected

    async def test_sessions_store_the_resolved_address(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        email = f"addr-{uuid.uuid4().hex[:10]}@example.com"
        assert (await signup(client, email=email)).status_code == 201
        login = await client.post(
            "/v1/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Forwarded-For": "6.6.6.6, 2001:db8:85a3::8a2e:370:7334"},
        )
        assert login.status_code == 200, login.text
        async with app.state.db.sessionmaker() as session:
            ips = set((await session.execute(select(AuthSession.ip))).scalars())
        assert ips == {"2001:db8:85a3::8a2e:370:7334"}


async def test_an_untrusted_peer_cannot_forward_an_address(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Default TRUSTED_PROXIES is 127.0.0.1; the test peer is 203.0.113.7.
    assert await _signup_address(app, client, "198.51.100.9") == "203.0.113.7"


def test_production_refuses_a_wildcard_proxy_list(database_url: str) -> None:
    settings = make_settings(database_url, app_env="prod", trusted_proxies="10.0.0.0/8, *")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        settings.check_production()
    make_settings(database_url, app_env="prod", trusted_proxies="10.0.0.0/8").check_production()


@pytest.mark.parametrize("spec", ["10.0.0.0/33", "proxy.example.com", "10.0.0.1 10.0.0.2"])
def test_a_proxy_list_entry_that_is_not_an_address_or_network_is_refused(
    database_url: str, spec: str
) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        make_settings(database_url, trusted_proxies=spec)


@pytest.mark.slow
def test_a_real_server_keeps_a_forged_forwarded_entry_out_of_the_audit_log(
    database_url: str, tmp_path: Path
) -> None:
    # The peer (127.0.0.1) is a trusted proxy by default; the forged entry is not an IP.
    email = f"addr-{uuid.uuid4().hex[:10]}@example.com"
    with Server(database_url, log_path=tmp_path / "server.log") as server:
        response = httpx.post(
            f"{server.base_url}/v1/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "date_of_birth": "1990-05-17",
            },
            headers={"X-Forwarded-For": "198.51.100.9, forged-<b>address</b>"},
        )
        assert response.status_code == 201, response.text

    async def signup_ip() -> str | None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                found: str | None = (
                    await connection.execute(
                        select(AuditEvent.ip).where(AuditEvent.event_type == "user.signup")
                    )
                ).scalar_one()
        finally:
            await engine.dispose()
        return found

    assert asyncio.run(signup_ip()) == "127.0.0.1"
