"""Reading the ledger: an account's history, balance checks, and the bank-wide entry list."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from banking.accounts import numbers
from banking.accounts.models import Account
from banking.core.pagination import CURSOR_ERRORS, cursor_int, cursor_time, cursor_uuid
from banking.ledger import cursor as cursors
from banking.ledger.models import EntryStatus, JournalEntry, Posting


class Direction(StrEnum):
    credit = "credit"
    debit = "debit"


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    status: EntryStatus = EntryStatus.posted
    kind: str | None = None
    direction: Direction | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: uuid.UUID
    posting_id: int | None
    kind: str
    status: str
    amount: int
    currency: str
    balance_after: int | None
    description: str | None
    counterparty_account_number: str | None
    decline_reason: str | None
    created_at: dt.datetime


def _time_position(created_at: dt.datetime, entry_id: uuid.UUID, kind: str) -> str:
    return cursors.encode({"k": kind, "t": created_at.isoformat(), "i": str(entry_id)})


def _decode_time_position(cursor: str, kind: str) -> tuple[dt.datetime, uuid.UUID]:
    position = cursors.decode(cursor, kind=kind)
    try:
        return cursor_time(position["t"]), cursor_uuid(position["i"])
    except CURSOR_ERRORS as exc:
        raise cursors.InvalidCursor() from exc


async def account_history(
    session: AsyncSession, *, account_id: uuid.UUID, filters: HistoryFilters
) -> tuple[list[HistoryItem], str | None]:
    if filters.status is EntryStatus.declined:
        return await _declined_history(session, account_id=account_id, filters=filters)
    counterparty = aliased(Account)
    other_side = case(
        (JournalEntry.source_account_id == Posting.account_id, JournalEntry.target_account_id),
        else_=JournalEntry.source_account_id,
    )
    query = (
        select(
            Posting.id,
            Posting.amount_minor,
            Posting.currency,
            Posting.balance_after_minor,
            Posting.created_at,
            JournalEntry.id.label("entry_id"),
            JournalEntry.kind,
            JournalEntry.status,
            JournalEntry.description,
            counterparty.number,
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(counterparty, counterparty.id == other_side, isouter=True)
        .where(Posting.account_id == account_id)
        .order_by(Posting.id.desc())
        .limit(filters.limit + 1)
    )
    if filters.cursor:
        position = cursors.decode(filters.cursor, kind="posted")
        try:
            before = cursor_int(position.get("p"))
        except CURSOR_ERRORS as exc:
            raise cursors.InvalidCursor() from exc
        query = query.where(Posting.id < before)
    if filters.kind:
        query = query.where(JournalEntry.kind == filters.kind)
    if filters.direction is Direction.credit:
        query = query.where(Posting.amount_minor > 0)
    elif filters.direction is Direction.debit:
        query = query.where(Posting.amount_minor < 0)
    if filters.created_from:
        query = query.where(Posting.created_at >= filters.created_from)
    if filters.created_to:
        query = query.where(Posting.created_at < filters.created_to)
    rows = (await session.execute(query)).all()
    items = [
        HistoryItem(
            id=row.entry_id,
            posting_id=row.id,
            kind=row.kind,
            status=row.status,
            amount=row.amount_minor,
            currency=row.currency,
            balance_after=row.balance_after_minor,
            description=row.description,
            counterparty_account_number=numbers.mask(row.number),
            decline_reason=None,
            created_at=row.created_at,
        )
        for row in rows[: filters.limit]
    ]
    next_cursor = None
    if len(rows) > filters.limit:
        next_cursor = cursors.encode({"k": "posted", "p": rows[filters.limit - 1].id})
    return items, next_cursor


async def _declined_history(
    session: AsyncSession, *, account_id: uuid.UUID, filters: HistoryFilters
) -> tuple[list[HistoryItem], str | None]:
    counterparty = aliased(Account)
    is_debit = JournalEntry.source_account_id == account_id
    other_side = case(
        (is_debit, JournalEntry.target_account_id), else_=JournalEntry.source_account_id
    )
    query = (
        select(JournalEntry, counterparty.number)
        .join(counterparty, counterparty.id == other_side, isouter=True)
        .where(
            JournalEntry.origin_account_id == account_id,
            JournalEntry.status == EntryStatus.declined.value,
        )
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
        .limit(filters.limit + 1)
    )
    query = _entry_filters(query, filters, cursor_kind="declined")
    if filters.direction is Direction.credit:
        query = query.where(JournalEntry.target_account_id == account_id)
    elif filters.direction is Direction.debit:
        query = query.where(is_debit)
    rows = (await session.execute(query)).all()
    items = []
    for entry, number in rows[: filters.limit]:
        sign = -1 if entry.source_account_id == account_id else 1
        items.append(
            HistoryItem(
                id=entry.id,
                posting_id=None,
                kind=entry.kind,
                status=entry.status,
                amount=sign * entry.amount_minor,
                currency=entry.currency,
                balance_after=None,
                description=entry.description,
                counterparty_account_number=numbers.mask(number),
                decline_reason=entry.decline_reason,
                created_at=entry.created_at,
            )
        )
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1][0]
        next_cursor = _time_position(last.created_at, last.id, "declined")
    return items, next_cursor


def _entry_filters(query: Any, filters: Any, *, cursor_kind: str) -> Any:
    if filters.cursor:
        created_at, entry_id = _decode_time_position(filters.cursor, cursor_kind)
        query = query.where(
            or_(
                JournalEntry.created_at < created_at,
                and_(JournalEntry.created_at == created_at, JournalEntry.id < entry_id),
            )
        )
    if filters.kind:
        query = query.where(JournalEntry.kind == filters.kind)
    if filters.created_from:
        query = query.where(JournalEntry.created_at >= filters.created_from)
    if filters.created_to:
        query = query.where(JournalEntry.created_at < filters.created_to)
    return query


@dataclass(frozen=True, slots=True)
class EntryFilters:
    status: EntryStatus | None = None
    kind: str | None = None
    account_id: uuid.UUID | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    limit: int = 50
    cursor: str | None = None


async def list_entries(
    session: AsyncSession, *, filters: EntryFilters
) -> tuple[list[JournalEntry], str | None]:
    """Journal entries across the bank, newest first (staff views)."""
    query = (
        select(JournalEntry)
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
        .limit(filters.limit + 1)
    )
    query = _entry_filters(query, filters, cursor_kind="entries")
    if filters.status is not None:
        query = query.where(JournalEntry.status == filters.status.value)
    if filters.account_id is not None:
        query = query.where(
            or_(
                JournalEntry.source_account_id == filters.account_id,
                JournalEntry.target_account_id == filters.account_id,
            )
        )
    rows = list((await session.execute(query)).scalars())
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = _time_position(last.created_at, last.id, "entries")
    return rows[: filters.limit], next_cursor


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    balance_minor: int
    held_minor: int
    sum_minor: int
    last_balance_after_minor: int | None

    @property
    def consistent(self) -> bool:
        last = self.last_balance_after_minor or 0
        return self.balance_minor == self.sum_minor == last


async def check_balance(session: AsyncSession, *, account_id: uuid.UUID) -> BalanceCheck:
    """The cached balance and its recomputations, read in one statement (one snapshot)."""
    last = (
        select(Posting.balance_after_minor)
        .where(Posting.account_id == account_id)
        .order_by(Posting.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    total = (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .where(Posting.account_id == account_id)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(Account.balance_minor, Account.held_minor, total, last).where(
                Account.id == account_id
            )
        )
    ).one()
    return BalanceCheck(
        balance_minor=row[0],
        held_minor=row[1],
        sum_minor=int(row[2]),
        last_balance_after_minor=row[3],
    )
