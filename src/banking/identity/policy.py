"""Password policy: length in characters and bytes, common passwords, the email's name."""

from __future__ import annotations

import re
from functools import lru_cache

MIN_LENGTH = 12
MAX_LENGTH = 128
MAX_BYTES = 512


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str) -> str | None:
    """The reason the password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH or len(password.encode()) > MAX_BYTES:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    core = re.sub(r"[\d\W_]+$", "", re.sub(r"^[\d\W_]+", "", lowered))
    common = _common_passwords()
    if lowered in common or (core and core in common and len(core) >= 4):
        return "is too common"
    if len(set(lowered)) <= 2:
        return "is too repetitive"
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 3 and local_part in lowered:
        return "must not contain your email address"
    return None
