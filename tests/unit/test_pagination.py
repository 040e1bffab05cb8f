from __future__ import annotations

import datetime as dt
import uuid

import pytest

from banking.core.pagination import InvalidCursor, PageRequest, decode_cursor, encode_cursor


class TestCursor:
    def test_a_cursor_round_trips_timestamps_ids_and_integers(self) -> None:
        stamp = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
        ident = uuid.uuid4()
        cursor = encode_cursor((stamp, ident, 42))
        assert "=" not in cursor
        assert decode_cursor(cursor, dt.datetime.fromisoformat, uuid.UUID, int) == (
            stamp,
            ident,
            42,
        )

    @pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", encode_cursor((1, 2))])
    def test_a_malformed_or_foreign_cursor_is_invalid(self, cursor: str) -> None:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, int)

    def test_slice_gives_a_next_cursor_only_when_more_rows_exist(self) -> None:
        page = PageRequest(limit=2, cursor=None)
        items, next_cursor = page.slice([1, 2, 3], key=lambda row: (row,))
        assert items == [1, 2]
        assert next_cursor is not None
        assert decode_cursor(next_cursor, int) == (2,)
        assert page.slice([1, 2], key=lambda row: (row,)) == ([1, 2], None)
        assert page.after(int) is None
