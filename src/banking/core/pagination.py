"""Cursor (keyset) pagination shared by every list endpoint.

A list is ordered by a unique sort key (for example `(created_at, id)` or just `id`). The
cursor is the sort key of the last item returned, JSON-encoded then base64url-encoded: it
is opaque to clients, survives inserts between pages (no skipped or repeated rows, unlike
OFFSET), and costs one index range scan per page.

    page: Pagination                                   # route parameter: limit, cursor
    after = page.after(cursor_time, cursor_uuid)       # decoded key or None
    statement = statement.where(keyset_after((Model.created_at, Model.id), after,
                                             descending=True)).limit(page.limit + 1)
    items, next_cursor = page.slice(rows, key=lambda row: (row.created_at, row.id))

A cursor also carries a short tag of the route it was issued by, and each part of the key
is converted strictly (`cursor_time` wants a time with a zone, `cursor_int` a JSON integer
in the 64-bit range, `cursor_uuid` a UUID string): a forged cursor, or one from another
list, is a 422 `invalid_cursor`, never a 500. `tests/reliability/test_cursor_fuzz.py`
sends random cursors to every paginated route.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from sqlalchemy import ColumnElement, and_, or_

from banking.core.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 512
T = TypeVar("T")


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "The cursor is malformed or does not belong to this list."


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def cursor_time(value: Any) -> dt.datetime:
    """A time with a zone, in UTC (a cursor's time without a zone is not ours)."""
    if not isinstance(value, str):
        raise TypeError("time is not a string")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time without a zone")
    return moment.astimezone(dt.UTC)


def cursor_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise TypeError("id is not a string")
    return uuid.UUID(value)


def cursor_int(value: Any) -> int:
    """A JSON integer (not a boolean, not a float) that fits a 64-bit column."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("out of range")
    return value


CURSOR_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    OverflowError,
    RecursionError,
    binascii.Error,
    UnicodeDecodeError,
)


def route_tag(path: str) -> str:
    """A short tag of a list's route template, kept in its cursors."""
    return hashlib.sha256(path.encode()).hexdigest()[:8]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, uuid.UUID | dt.date):
        return str(value)
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def encode_cursor(key: Sequence[Any], *, tag: str = "") -> str:
    raw = json.dumps([tag, *(_plain(value) for value in key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: Callable[[Any], Any], tag: str = "") -> tuple[Any, ...]:
    """The sort key in `cursor`, each part converted by the matching callable."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(types) + 1 or parts[0] != tag:
            raise ValueError("wrong shape or another list's cursor")
        return tuple(convert(part) for convert, part in zip(types, parts[1:], strict=True))
    except CURSOR_ERRORS as exc:
        raise InvalidCursor() from exc


def keyset_after(
    columns: Sequence[Any], key: Sequence[Any] | None, *, descending: bool = False
) -> ColumnElement[bool]:
    """Rows strictly after `key` in the order of `columns` (all ascending or all descending).

    Spelled as OR/AND rather than a row-value comparison so each bound value takes its
    column's type (UUIDs and timestamps are stored differently on SQLite and PostgreSQL).
    """
    if key is None:
        return and_(True)
    clauses = []
    for index, column in enumerate(columns):
        equal = [columns[i] == key[i] for i in range(index)]
        beyond = column < key[index] if descending else column > key[index]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None
    tag: str = ""

    def after(self, *types: Callable[[Any], Any]) -> tuple[Any, ...] | None:
        return decode_cursor(self.cursor, *types, tag=self.tag) if self.cursor else None

    def cursor_for(self, key: Sequence[Any]) -> str:
        return encode_cursor(key, tag=self.tag)

    def slice(
        self, rows: Sequence[T], *, key: Callable[[T], Sequence[Any]]
    ) -> tuple[list[T], str | None]:
        """Given up to `limit + 1` rows, the page and the cursor of the next one (or None)."""
        items = list(rows[: self.limit])
        more = len(rows) > self.limit
        return items, self.cursor_for(key(items[-1])) if more and items else None


async def page_request(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-100).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            pattern=r"^[A-Za-z0-9_-]*$",
            description="`next_cursor` from the previous page; omit for the first page.",
        ),
    ] = None,
) -> PageRequest:
    # A coroutine, not a plain function: FastAPI runs a plain function dependency in a
    # worker thread, a hand-off that cost more CPU than the rest of a list's parameters.
    route = request.scope.get("route")
    return PageRequest(
        limit=limit, cursor=cursor or None, tag=route_tag(getattr(route, "path", ""))
    )


Pagination = Annotated[PageRequest, Depends(page_request)]
