from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

import banking.app
from banking.app import create_app
from banking.core import security
from banking.core.config import Settings
from tests.databases import ON_POSTGRES, DatabaseFactory

TEST_SECRETS = {
    "jwt_secret": "test-jwt-secret-0123456789abcdef0123456789abcdef",
    "card_encryption_key": "test-card-key-0123456789abcdef0123456789abcdef",
    "card_network_api_key": "test-network-key-0123456789abcdef0123456789abcdef",
    "audit_key": "test-audit-key-0123456789abcdef0123456789abcdef",
}


# The production Argon2id parameters cost ~85 ms of CPU per hash or check, and nearly every
# test signs up and logs in several people. Tests in this process hash with the same
# algorithm at the smallest cost; the production hasher is kept here and checked by
# tests/unit/test_password_hashing.py, and every server-process test (e2e, reliability,
# deploy) still runs `banking serve` with the production parameters.
PRODUCTION_PASSWORDS = security.PASSWORDS
PRODUCTION_DUMMY_HASH = security._DUMMY_HASH
TEST_PASSWORDS = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16)
security.PASSWORDS = TEST_PASSWORDS
security._DUMMY_HASH = TEST_PASSWORDS.hash("an unused password")


class _YoungGenerationGc:
    """The app's start-up runs a full `gc.collect()` before `gc.freeze()` (a production
    latency measure). In this process the heap holds every test module, Hypothesis and
    schemathesis, so that collection cost ~0.2 s per test app. Here it collects the
    youngest generation only; freezing works as in production, and the server-process
    tests run the full collection."""

    collect = staticmethod(lambda: gc.collect(0))
    freeze = staticmethod(gc.freeze)
    unfreeze = staticmethod(gc.unfreeze)


banking.app.gc = _YoungGenerationGc  # type: ignore[assignment]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run every `async def` test on anyio (marked before anyio's own hook looks)."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start servers or browsers first (stable otherwise): under pytest-xdist
    the long ones then run beside the many short ones instead of after them."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)


def pytest_report_header() -> str:
    return (
        f"database: {'PostgreSQL (TEST_DATABASE_URL)' if ON_POSTGRES else 'SQLite'}; "
        "passwords hashed in-process with cheap Argon2id parameters"
    )


@pytest.fixture
def production_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with the production Argon2id parameters in this test (tests of what a real
    check's cost does to the event loop and the hashing queue need the real cost)."""
    monkeypatch.setattr(security, "PASSWORDS", PRODUCTION_PASSWORDS)
    monkeypatch.setattr(security, "_DUMMY_HASH", PRODUCTION_DUMMY_HASH)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture
def database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    url = database_factory.new_url()
    yield url
    database_factory.drop(url)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": database_url,
        "log_format": "json",
        "rate_limits_enabled": False,
        "db_pool_size": 5,
        **TEST_SECRETS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for this test's app: `@pytest.mark.parametrize("settings_overrides",
    [{...}], indirect=True)`, or override the fixture in a module."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
