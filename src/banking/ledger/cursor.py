"""Opaque pagination cursors: URL-safe base64 of a small JSON object.

A cursor only says where the previous page ended; filters are sent again with each page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from banking.core.errors import InvalidRequest


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "The cursor is malformed or was not issued for this list."


def encode(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, *, kind: str) -> dict[str, Any]:
    """The position inside `cursor`, which must have been issued with `{"k": kind}`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidCursor() from exc
    if not isinstance(position, dict) or position.get("k") != kind:
        raise InvalidCursor()
    return position
