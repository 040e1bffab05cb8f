"""Columns read as the text a JSON answer carries (core/db.py `JsonUuid`, `JsonTime`)
write exactly what reading them as `uuid.UUID` and `UTCDateTime` and encoding would."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import to_json
from sqlalchemy import Uuid
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg

from banking.core.db import JsonTime, JsonUuid, UTCDateTime

SQLITE = sqlite.dialect()
ASYNCPG = asyncpg.dialect()


def _result(type_: object, dialect: object) -> object:
    return type_.dialect_impl(dialect).result_processor(dialect, None)  # type: ignore[attr-defined]


def _bind(type_: object, dialect: object) -> object:
    return type_.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[attr-defined]


@given(st.uuids())
def test_a_uuid_is_written_as_the_encoder_writes_it(value: uuid.UUID) -> None:
    stored = _bind(Uuid(), SQLITE)(value)  # type: ignore[operator]
    reference = _result(Uuid(), SQLITE)(stored)  # type: ignore[operator]
    assert to_json(_result(JsonUuid(), SQLITE)(stored)) == to_json(reference)  # type: ignore[operator]
    # asyncpg hands a UUID over (no processor on the reference path).
    assert _result(Uuid(), ASYNCPG) is None
    assert to_json(_result(JsonUuid(), ASYNCPG)(value)) == to_json(value)  # type: ignore[operator]


def test_upper_case_hex_is_written_in_lower_case() -> None:
    value = uuid.UUID("0123ABCD-0000-4000-8000-00000000ABCD")
    assert _result(JsonUuid(), SQLITE)(value.hex.upper()) == str(value)  # type: ignore[operator]


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    )
)
def test_a_time_is_written_as_the_encoder_writes_it(value: dt.datetime) -> None:
    stored = _bind(UTCDateTime(), SQLITE)(value)  # type: ignore[operator]
    reference = _result(UTCDateTime(), SQLITE)(stored)  # type: ignore[operator]
    assert reference == value
    assert to_json(_result(JsonTime(), SQLITE)(stored)) == to_json(reference)  # type: ignore[operator]


def test_whole_seconds_and_other_stored_forms() -> None:
    fast = _result(JsonTime(), SQLITE)
    assert fast("2026-03-01 09:00:00.000000") == "2026-03-01T09:00:00Z"  # type: ignore[operator]
    assert fast("2026-03-01 09:00:00.250000") == "2026-03-01T09:00:00.250000Z"  # type: ignore[operator]
    # A form the ORM never writes (no fraction) is parsed, still as UTC.
    assert fast("2026-03-01 09:00:00") == dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)  # type: ignore[operator]
    # PostgreSQL: asyncpg's aware datetime goes to the encoder as it is.
    assert _result(JsonTime(), ASYNCPG) is None
