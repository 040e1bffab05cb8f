"""Password hashing (Argon2id), access tokens (JWT, HS256 pinned) and opaque tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
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
