"""Password hashing (Argon2id), access tokens (JWT, HS256 pinned) and opaque tokens.

Argon2 costs about 100 ms of CPU per hash. The async code hashes and verifies through
`hash_password_async` / `verify_password_async`, which run the work in a small thread pool
of its own (`PASSWORD_HASH_WORKERS` threads, at a lower scheduling priority than the
event loop), never on the event loop: a flood of logins then waits in that pool's queue
while transfers keep their CPU. At most `PASSWORD_HASH_QUEUE` hashes may wait; beyond
that a request is refused at once with 503 `hashing_busy` (and `Retry-After`).
`tests/unit/test_security.py` and `tests/integration/test_identity.py` check both limits;
`make bench` measures transfers/s under a login flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "banking"

# OWASP (2024): Argon2id with m=19 MiB, t=2, p=1 is the minimum; we use more memory.
PASSWORDS = PasswordHasher(
    time_cost=2, memory_cost=46 * 1024, parallelism=1, hash_len=32, salt_len=16
)
# Verified against when the email is unknown, so both paths cost the same.
_DUMMY_HASH = PASSWORDS.hash(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (
            PASSWORDS.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return PASSWORDS.check_needs_rehash(password_hash)


class HashingBusy(Exception):
    """More password hashes are waiting than `PASSWORD_HASH_QUEUE` allows."""


# How much lower than the event loop the hashing threads run (Linux `nice`, 0-19).
HASHING_NICENESS = 10


def _lower_priority() -> None:
    # On Linux a thread has its own nice value: the event loop keeps the CPU first.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class PasswordHashing:
    """Argon2 off the event loop: `workers` threads hash at once, `max_waiting` may queue.

    The cap counts every hash that was handed over and has not finished (running or
    waiting), across event loops, under a thread lock.
    """

    def __init__(self, *, workers: int = 1, max_waiting: int = 32) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._pending = 0
        self._executor: ThreadPoolExecutor | None = None

    def configure(self, *, workers: int, max_waiting: int) -> None:
        with self._lock:
            if workers != self.workers and self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None
            self.workers, self.max_waiting = workers, max_waiting

    @property
    def pending(self) -> int:
        return self._pending

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers,
                thread_name_prefix="argon2",
                initializer=_lower_priority,
            )
        return self._executor

    async def run(self, function: Any, *args: Any) -> Any:
        with self._lock:
            if self._pending >= self.workers + self.max_waiting:
                raise HashingBusy()
            self._pending += 1
            pool = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        finally:
            with self._lock:
                self._pending -= 1


HASHING = PasswordHashing()


async def hash_password_async(password: str) -> str:
    result: str = await HASHING.run(hash_password, password)
    return result


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    result: bool = await HASHING.run(verify_password, password_hash, password)
    return result


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy token: enough to store it, useless to an attacker."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


@lru_cache(maxsize=32)
def derive_key(secret: str, label: str) -> bytes:
    """A 32-byte key for one purpose (`label`), derived from a server secret with
    HKDF-SHA256: keys for different labels are independent, and none reveals the secret."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"banking-derived-key", info=label.encode()
    ).derive(secret.encode())


def keyed_digest(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of `message`, hex: a digest nobody without the key can recompute."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    role: str
    expires_at: dt.datetime


def issue_access_token(
    *,
    secret: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    role: str,
    ttl_s: int,
    now: dt.datetime,
) -> str:
    payload = {
        "iss": JWT_ISSUER,
        "sub": str(user_id),
        "sid": str(session_id),
        "role": role,
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl_s,
    }
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)


class InvalidToken(Exception):
    pass


class _VerifiedTokens:
    """Access tokens whose signature and claims were already verified, by secret and token.

    A client sends the same access token with every request until it expires; verifying
    it (HMAC, base64, JSON, claim checks) once instead of every time takes a large share
    of a short request's CPU. Only a token that passed every check is stored; its expiry
    is checked again on every use, and the session behind it is still checked against the
    database by every request. Bounded: when full, the oldest entries are dropped.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._claims: dict[tuple[str, str], tuple[float, AccessClaims]] = {}

    def get(self, secret: str, token: str) -> AccessClaims | None:
        found = self._claims.get((secret, token))
        if found is None:
            return None
        expires_at, claims = found
        if time.time() >= expires_at:
            self._claims.pop((secret, token), None)
            return None
        return claims

    def put(self, secret: str, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.capacity:
            # Dicts keep insertion order: drop the oldest eighth in one go.
            for stale in list(self._claims)[: max(1, self.capacity // 8)]:
                del self._claims[stale]
        self._claims[(secret, token)] = (claims.expires_at.timestamp(), claims)

    def clear(self) -> None:
        self._claims.clear()


VERIFIED_TOKENS = _VerifiedTokens(capacity=8192)


def decode_access_token(token: str, *, secret: str) -> AccessClaims:
    claims = VERIFIED_TOKENS.get(secret, token)
    if claims is not None:
        return claims
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "jti"]},
        )
        claims = AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            role=str(payload.get("role", "")),
            expires_at=dt.datetime.fromtimestamp(payload["exp"], dt.UTC),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
        raise InvalidToken(type(exc).__name__) from exc
    VERIFIED_TOKENS.put(secret, token, claims)
    return claims
