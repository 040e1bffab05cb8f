"""Cursor (keyset) pagination shared by every list endpoint.

A list is ordered by a unique sort key (for example `(created_at, id)` or just `id`). The
cursor is the sort key of the last item returned, JSON-encoded then base64url-encoded: it
is opaque to clients, survives inserts between pages (no skipped or repeated rows, unlike
OFFSET), and costs one index range scan per page.

    page: Pagination                                   # route parameter: limit, cursor
    after = page.after(dt.datetime.fromisoformat, uuid.UUID)   # decoded key or None
    statement = statement.where(keyset_after((Model.created_at, Model.id), after,
                                             descending=True)).limit(page.limit + 1)
    items, next_cursor = page.slice(rows, key=lambda row: (row.created_at, row.id))
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, and_, or_

from banking.core.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 512
T = TypeVar("T")


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"
    title = "The cursor is malformed or does not belong to this list."


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, uuid.UUID | dt.date):
        return str(value)
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([_plain(value) for value in key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The sort key in `cursor`, each part converted by the matching callable."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError("wrong shape")
        return tuple(convert(part) for convert, part in zip(types, parts, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
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

    def after(self, *types: Callable[[Any], Any]) -> tuple[Any, ...] | None:
        return decode_cursor(self.cursor, *types) if self.cursor else None

    def slice(
        self, rows: Sequence[T], *, key: Callable[[T], Sequence[Any]]
    ) -> tuple[list[T], str | None]:
        """Given up to `limit + 1` rows, the page and the cursor of the next one (or None)."""
        items = list(rows[: self.limit])
        more = len(rows) > self.limit
        return items, encode_cursor(key(items[-1])) if more and items else None


def page_request(
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
    return PageRequest(limit=limit, cursor=cursor or None)


Pagination = Annotated[PageRequest, Depends(page_request)]
