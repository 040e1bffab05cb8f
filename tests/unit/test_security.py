"""Access tokens: the verified-token cache never accepts what a full check would refuse."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from banking.core import security

SECRET = "unit-test-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    security.VERIFIED_TOKENS.clear()


def _token(*, ttl_s: int = 300, secret: str = SECRET) -> str:
    return security.issue_access_token(
        secret=secret,
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role="member",
        ttl_s=ttl_s,
        now=dt.datetime.now(dt.UTC),
    )


def test_a_reused_token_decodes_to_the_same_claims() -> None:
    token = _token()
    first = security.decode_access_token(token, secret=SECRET)
    assert security.decode_access_token(token, secret=SECRET) is first


class _Clock:
    """Stands in for the `time` module inside banking.core.security."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_a_cached_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = _token(ttl_s=60)
    claims = security.decode_access_token(token, secret=SECRET)
    expires_at = claims.expires_at.timestamp()
    clock = _Clock(expires_at - 0.001)
    monkeypatch.setattr(security, "time", clock)
    # Served from the cache up to its expiry...
    assert security.decode_access_token(token, secret=SECRET) is claims
    # ...and no longer at it: the cache drops the token and the full check runs again.
    clock.now = expires_at
    assert security.VERIFIED_TOKENS.get(SECRET, token) is None


def test_an_expired_token_is_refused_by_the_full_check() -> None:
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)
    token = security.issue_access_token(
        secret=SECRET,
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role="member",
        ttl_s=60,
        now=issued,
    )
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(token, secret=SECRET)
    assert security.VERIFIED_TOKENS.get(SECRET, token) is None


def test_a_cached_token_is_refused_under_another_secret() -> None:
    token = _token()
    security.decode_access_token(token, secret=SECRET)
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(token, secret=SECRET + "-rotated")


def test_a_tampered_copy_of_a_cached_token_is_refused() -> None:
    token = _token()
    security.decode_access_token(token, secret=SECRET)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(f"{header}.{payload}.{flipped}", secret=SECRET)


def test_an_invalid_token_is_never_cached() -> None:
    token = _token(secret="some-other-secret-0123456789abcdef0123456789ab")
    for _ in range(2):
        with pytest.raises(security.InvalidToken):
            security.decode_access_token(token, secret=SECRET)
    assert security.VERIFIED_TOKENS.get(SECRET, token) is None


def test_the_cache_stays_within_its_capacity() -> None:
    cache = security._VerifiedTokens(capacity=16)
    claims = security.decode_access_token(_token(), secret=SECRET)
    for index in range(100):
        cache.put(SECRET, f"token-{index}", claims)
    assert len(cache._claims) <= 16
    assert cache.get(SECRET, "token-99") is claims
    assert cache.get(SECRET, "token-0") is None
