"""Rate limits with the `limits` library: per client IP or per user, named in settings.

Each named limit reads its value from `settings.rate_limit_<name>` in the library's
notation (`10/minute`, `5 per 30 seconds`). Counters live in memory (one process) or in
Redis when `REDIS_URL` is set, so several API processes share them. The moving-window
strategy means a burst at the edge of a minute cannot double the allowance.

Routes opt in with a dependency; a per-user limit also authenticates the caller and
gives the route its principal (one dependency for both). The principal comes from the
provider the application wires (`app.state.principal_provider`, identity's `authenticate`),
so core imports no domain:

    @router.post("/login", dependencies=[RateLimit("login")])
    async def transfer(user: Annotated[Principal, rate_limit("money", per="user")]): ...

A refused request is a 429 problem+json (`rate_limited`) with a `Retry-After` header.
`RATE_LIMITS_ENABLED=false` turns every limit off (load tests, benchmarks). When the
Redis storage fails, requests are let through and the failure is logged: a broken
counter must not take the bank down, and login keeps its per-user lockout regardless.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from banking.core.config import Settings
from banking.core.deps import bearer_scheme
from banking.core.errors import RateLimited
from banking.core.logging import get_logger

log = get_logger("banking.ratelimit")

LIMIT_NAMES = ("signup", "login", "refresh", "money", "lookup", "network")
Per = Literal["ip", "user"]
# Turns the request's bearer credentials into the caller's principal (an object with a
# `user_id`), or raises the domain's 401. Core knows no domain: the application wires
# identity's `authenticate` into `app.state.principal_provider` (see app.py).
PrincipalProvider = Callable[[Request, Any], Coroutine[Any, Any, Any]]


class RateLimiter:
    """Named limits over one storage; built once per application."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.enabled = settings.rate_limits_enabled
        self.key_prefix = settings.rate_limit_key_prefix
        self.storage = storage or make_storage(settings)
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.limits: dict[str, RateLimitItem] = {
            name: parse(getattr(settings, f"rate_limit_{name}")) for name in LIMIT_NAMES
        }

    async def hit(self, name: str, identity: str) -> float | None:
        """Count one request; None when allowed, else the seconds to wait before retrying."""
        if not self.enabled:
            return None
        item = self.limits[name]
        try:
            if await self.strategy.hit(item, self.key_prefix, name, identity):
                return None
            stats = await self.strategy.get_window_stats(item, self.key_prefix, name, identity)
        except Exception as exc:
            log.error("rate_limit_storage_failed", limit=name, error_type=type(exc).__name__)
            return None
        return max(1.0, stats.reset_time - time.time())

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


def make_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        storage = storage_from_string(
            "async+" + settings.redis_url,
            implementation="redispy",
            key_prefix=settings.rate_limit_key_prefix,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


async def install(app: FastAPI) -> None:
    """Start-up hook: one limiter per application."""
    app.state.rate_limiter = RateLimiter(app.state.settings)


async def close(app: FastAPI) -> None:
    limiter: RateLimiter | None = getattr(app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.close()


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


async def _enforce(request: Request, name: str, identity: str) -> None:
    retry_after = await _limiter(request).hit(name, identity)
    if retry_after is not None:
        seconds = math.ceil(retry_after)
        raise RateLimited(
            f"The {name} limit is reached; retry in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )


def _principal_provider(request: Request) -> PrincipalProvider:
    provider: PrincipalProvider | None = getattr(request.app.state, "principal_provider", None)
    if provider is None:
        raise RuntimeError("no principal provider: create_app sets app.state.principal_provider")
    return provider


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limit(name: str, *, per: Per = "ip") -> Any:
    """A dependency that counts the request against the named limit, per IP or per user.

    `per="user"` authenticates the caller first, so an unauthenticated request is refused
    with 401 before it is counted, and the dependency's value is the caller's `Principal`
    (the route takes it instead of `CurrentUser`, not as well: that would check twice).
    """
    if name not in LIMIT_NAMES:
        raise ValueError(f"unknown rate limit {name!r}; known: {', '.join(LIMIT_NAMES)}")
    check: Callable[..., Coroutine[Any, Any, Any]]
    if per == "user":
        bearer = Depends(bearer_scheme)

        # Annotations here are strings resolved in this module's globals, hence `Any`.
        async def check_user(request: Request, credentials: Any = bearer) -> Any:
            principal = await _principal_provider(request)(request, credentials)
            await _enforce(request, name, f"user:{principal.user_id}")
            return principal

        check = check_user
    else:

        async def check_ip(request: Request) -> None:
            await _enforce(request, name, f"ip:{_client_ip(request)}")

        check = check_ip
    return Depends(check)


def RateLimit(name: str, *, per: Per = "ip") -> Any:
    """The same as `rate_limit`, spelled as a marker: `dependencies=[RateLimit("login")]`."""
    return rate_limit(name, per=per)
