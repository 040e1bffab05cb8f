"""Statements: an account's calendar month, read from the ledger.

Guarantees: a month is cut at local midnight in the bank's time zone (`BANK_TIMEZONE`);
opening balance + credits - debits = closing balance, and the closing balance of one month
is the opening balance of the next. Balances come from the `balance_after_minor` of the
account's last posting before each boundary, found through the `(account_id, created_at)`
index, and the lines from a range scan of that index, so the cost of a statement depends on
the month's lines, never on the length of the account's history. Everything is read in one
snapshot. The current month is a statement to date (`is_partial`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, case, exists, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from banking.accounts import numbers
from banking.accounts.models import Account
from banking.core import reads
from banking.core.currencies import CURRENCY_EXPONENTS
from banking.core.errors import InvalidRequest, NotFound
from banking.holders.models import AccountHolder
from banking.identity.service import Principal
from banking.ledger import internal
from banking.ledger.models import JournalEntry, Posting

POSTING = cast(Table, Posting.__table__)
MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
FIRST_YEAR = 1900
# How many candidate months one query checks for activity (one EXISTS column each).
MONTHS_PER_PROBE = 48

KIND_LABELS = {
    "deposit": "Deposit",
    "withdrawal": "Withdrawal",
    "transfer": "Transfer",
    "card_capture": "Card payment",
    "reversal": "Reversal",
    "card_refund": "Card refund",
    "interest": "Interest",
}
COUNTERPARTY_LABELS = {
    internal.Purpose.cash.value: "Cash",
    internal.Purpose.card_network.value: "Card network",
    internal.Purpose.interest_expense.value: "Interest",
}


class InvalidMonth(InvalidRequest):
    code = "invalid_month"
    title = "The month must be written YYYY-MM, with a month from 01 to 12 and a year from 1900."


class MonthInFuture(InvalidRequest):
    code = "month_in_future"
    title = "The month has not started yet in the bank's time zone."


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def parse(cls, text: str) -> Month:
        match = MONTH_PATTERN.match(text)
        if match is None:
            raise InvalidMonth()
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12 or year < FIRST_YEAR:
            raise InvalidMonth()
        return cls(year, month)

    @classmethod
    def containing(cls, moment: dt.datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    def last_day(self) -> dt.date:
        return self.next().first_day() - dt.timedelta(days=1)

    def starts_at(self, zone: ZoneInfo) -> dt.datetime:
        """Local midnight on the 1st, as an aware UTC datetime."""
        return dt.datetime(self.year, self.month, 1, tzinfo=zone).astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Period:
    month: Month
    timezone: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    """Exclusive: the start of the next month."""

    @classmethod
    def of(cls, month: Month, zone: ZoneInfo) -> Period:
        return cls(
            month=month,
            timezone=zone.key,
            starts_at=month.starts_at(zone),
            ends_at=month.next().starts_at(zone),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class StatementAccount:
    id: uuid.UUID
    number: str
    masked_number: str
    type: str
    currency: str
    holder_name: str
    nickname: str | None
    holder_address: tuple[str, ...] = ()
    """The holder's postal address, one printed line each (empty when unknown)."""


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting_id: int
    entry_id: uuid.UUID
    created_at: dt.datetime
    date: dt.date
    kind: str
    description: str
    counterparty: str
    amount_minor: int
    balance_after_minor: int


@dataclass(frozen=True, slots=True)
class PendingHold:
    id: uuid.UUID
    created_at: dt.datetime
    description: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Statement:
    account: StatementAccount
    period: Period
    opening_balance_minor: int
    closing_balance_minor: int
    total_credits_minor: int
    total_debits_minor: int
    lines: list[StatementLine]
    pending_holds: list[PendingHold]
    is_partial: bool
    generated_at: dt.datetime

    @property
    def count(self) -> int:
        return len(self.lines)

    @property
    def currency(self) -> str:
        return self.account.currency

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS.get(self.account.currency, 2)

    @property
    def title(self) -> str:
        return "Statement to date" if self.is_partial else "Monthly statement"

    def daily_balances(self) -> list[tuple[dt.date, int]]:
        """The balance at the end of each day of the period (up to today when partial)."""
        last_day = self.period.month.last_day()
        if self.is_partial:
            last_day = min(last_day, self.generated_at.astimezone(self.period.zone).date())
        closing_by_day: dict[dt.date, int] = {}
        for line in self.lines:
            closing_by_day[line.date] = line.balance_after_minor
        balance = self.opening_balance_minor
        days = []
        day = self.period.month.first_day()
        while day <= last_day:
            balance = closing_by_day.get(day, balance)
            days.append((day, balance))
            day += dt.timedelta(days=1)
        return days


async def _snapshot(session: AsyncSession) -> None:
    """Start one read snapshot for everything the statement reads."""
    # The authentication read may have begun a transaction; end it so this one starts fresh.
    await session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _balance_before(account_id: uuid.UUID, boundary: dt.datetime) -> Any:
    """The account's balance just before `boundary`: one backward step in the index."""
    return (
        select(Posting.balance_after_minor)
        .where(Posting.account_id == account_id, Posting.created_at < boundary)
        .order_by(Posting.created_at.desc(), Posting.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_ACCOUNT_TABLE = cast(Table, Account.__table__)
_HOLDER_TABLE = cast(Table, AccountHolder.__table__)
_STATEMENT_ACCOUNT = (
    select(
        _ACCOUNT_TABLE.c.id,
        _ACCOUNT_TABLE.c.number,
        _ACCOUNT_TABLE.c.owner_id,
        _ACCOUNT_TABLE.c.type,
        _ACCOUNT_TABLE.c.currency,
        _ACCOUNT_TABLE.c.nickname,
        _HOLDER_TABLE.c.first_name,
        _HOLDER_TABLE.c.last_name,
        _HOLDER_TABLE.c.address_line1,
        _HOLDER_TABLE.c.address_line2,
        _HOLDER_TABLE.c.postal_code,
        _HOLDER_TABLE.c.city,
        _HOLDER_TABLE.c.country,
    )
    .select_from(
        _ACCOUNT_TABLE.outerjoin(
            _HOLDER_TABLE, _HOLDER_TABLE.c.user_id == _ACCOUNT_TABLE.c.owner_id
        )
    )
    .where(_ACCOUNT_TABLE.c.id == bindparam("account_id"), _ACCOUNT_TABLE.c.is_internal.is_(False))
)


def _account_sync(
    connection: Connection, *, principal: Principal | None, account_id: uuid.UUID
) -> StatementAccount:
    row = reads.first(connection, _STATEMENT_ACCOUNT, {"account_id": account_id})
    # Anyone else's account is 404, as if it did not exist, so ids cannot be probed.
    if row is None or (principal is not None and row.owner_id != principal.user_id):
        raise NotFound("No such account.")
    holder = " ".join(part for part in (row.first_name, row.last_name) if part)
    town = " ".join(part for part in (row.postal_code, row.city) if part)
    address = tuple(
        part for part in (row.address_line1, row.address_line2, town, row.country) if part
    )
    return StatementAccount(
        id=row.id,
        number=row.number or "",
        masked_number=numbers.mask(row.number) or "",
        type=row.type,
        currency=row.currency,
        holder_name=holder,
        nickname=row.nickname,
        holder_address=address,
    )


async def _account(
    session: AsyncSession, *, principal: Principal | None, account_id: uuid.UUID
) -> StatementAccount:
    connection = await session.connection()
    return await connection.run_sync(
        lambda sync: _account_sync(sync, principal=principal, account_id=account_id)
    )


async def find_account_id(session: AsyncSession, reference: str) -> uuid.UUID | None:
    """A customer account named by its id or its 12-digit number (for the CLI)."""
    try:
        return uuid.UUID(reference)
    except ValueError:
        pass
    found: uuid.UUID | None = (
        await session.execute(
            select(Account.id).where(Account.number == reference, Account.is_internal.is_(False))
        )
    ).scalar_one_or_none()
    return found


def _counterparty(number: str | None, purpose: str | None) -> str:
    if purpose is not None:
        return COUNTERPARTY_LABELS.get(purpose, purpose.replace("_", " ").capitalize())
    return numbers.mask(number) or ""


def _lines(connection: Connection, *, account_id: uuid.UUID, period: Period) -> list[StatementLine]:
    other = aliased(Account)
    other_side = case(
        (JournalEntry.source_account_id == Posting.account_id, JournalEntry.target_account_id),
        else_=JournalEntry.source_account_id,
    )
    rows = connection.execute(
        select(
            Posting.id,
            Posting.amount_minor,
            Posting.balance_after_minor,
            Posting.created_at,
            JournalEntry.id.label("entry_id"),
            JournalEntry.kind,
            JournalEntry.description,
            other.number,
            other.purpose,
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(other, other.id == other_side, isouter=True)
        .where(
            Posting.account_id == account_id,
            Posting.created_at >= period.starts_at,
            Posting.created_at < period.ends_at,
        )
        .order_by(Posting.created_at, Posting.id)
    )
    zone = period.zone
    lines = []
    for row in rows:
        if row.balance_after_minor is None:  # pragma: no cover - customer postings have one
            raise RuntimeError(f"posting {row.id} has no balance after")
        lines.append(
            StatementLine(
                posting_id=row.id,
                entry_id=row.entry_id,
                created_at=row.created_at,
                date=row.created_at.astimezone(zone).date(),
                kind=row.kind,
                description=row.description or KIND_LABELS.get(row.kind, row.kind),
                counterparty=_counterparty(row.number, row.purpose),
                amount_minor=row.amount_minor,
                balance_after_minor=row.balance_after_minor,
            )
        )
    return lines


def pending_holds(
    connection: Connection, *, account_id: uuid.UUID, at: dt.datetime, before: bool = False
) -> list[PendingHold]:
    """The card holds open on the account at the instant `at` (with `before`, the instant
    just before it: a period's exclusive end), listed beside the statement (not part of its
    totals): placed by then, and neither settled (captured, voided, expired) nor lapsed by
    then. Nothing placed after it is listed. At the present time these are the approved
    authorizations whose amounts make up `account.held_minor` (less any lapsed hold not
    yet released)."""
    from banking.cards.models import AuthorizationStatus, CardAuthorization

    rows = connection.execute(
        select(
            CardAuthorization.id,
            CardAuthorization.created_at,
            CardAuthorization.merchant_name,
            CardAuthorization.amount_minor,
        )
        .where(
            CardAuthorization.account_id == account_id,
            CardAuthorization.status != AuthorizationStatus.declined.value,
            CardAuthorization.created_at < at if before else CardAuthorization.created_at <= at,
            CardAuthorization.expires_at >= at if before else CardAuthorization.expires_at > at,
            or_(
                CardAuthorization.settled_at.is_(None),
                CardAuthorization.settled_at >= at if before else CardAuthorization.settled_at > at,
            ),
        )
        .order_by(CardAuthorization.created_at, CardAuthorization.id)
    )
    return [
        PendingHold(
            id=row.id,
            created_at=row.created_at,
            description=f"Card hold: {row.merchant_name}",
            amount_minor=row.amount_minor,
        )
        for row in rows
    ]


def current_month(now: dt.datetime, timezone: str) -> Month:
    return Month.containing(now, ZoneInfo(timezone))


async def build_statement(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    month: str,
    timezone: str,
    now: dt.datetime,
    principal: Principal | None = None,
) -> Statement:
    """`build_statement_sync` in one read snapshot of `session` (the CLI)."""
    await _snapshot(session)
    connection = await session.connection()
    try:
        return await connection.run_sync(
            lambda sync: build_statement_sync(
                sync,
                account_id=account_id,
                month=month,
                timezone=timezone,
                now=now,
                principal=principal,
            )
        )
    finally:
        await session.rollback()


def build_statement_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    month: str,
    timezone: str,
    now: dt.datetime,
    principal: Principal | None = None,
) -> Statement:
    """The statement of `month` (YYYY-MM); with a `principal`, only for their own account.
    Run it in one read snapshot: its statements must see one state of the ledger."""
    zone = ZoneInfo(timezone)
    wanted = Month.parse(month)
    today = Month.containing(now, zone)
    if wanted > today:
        raise MonthInFuture(f"{wanted} has not started yet in {zone.key}.")
    account = _account_sync(connection, principal=principal, account_id=account_id)
    period = Period.of(wanted, zone)
    balances = connection.execute(
        select(
            _balance_before(account_id, period.starts_at),
            _balance_before(account_id, period.ends_at),
        )
    ).one()
    lines = _lines(connection, account_id=account_id, period=period)
    # The holds open at the period's end (now, for a statement to date).
    partial = wanted == today
    holds = pending_holds(
        connection,
        account_id=account_id,
        at=now if partial else period.ends_at,
        before=not partial,
    )
    return Statement(
        account=account,
        period=period,
        opening_balance_minor=balances[0] or 0,
        closing_balance_minor=balances[1] or 0,
        total_credits_minor=sum(line.amount_minor for line in lines if line.amount_minor > 0),
        total_debits_minor=-sum(line.amount_minor for line in lines if line.amount_minor < 0),
        lines=lines,
        pending_holds=holds,
        is_partial=partial,
        generated_at=now,
    )


_POSTING_TABLE = cast(Table, Posting.__table__)
_POSTED_AT = _POSTING_TABLE.c.created_at


@functools.cache
def _months_probe(count: int) -> Any:
    """One EXISTS probe of the index per month, for `count` months (bound parameters)."""
    columns = [
        exists()
        .where(
            _POSTING_TABLE.c.account_id == bindparam("account_id"),
            bindparam(f"start_{index}", type_=_POSTED_AT.type) <= _POSTED_AT,
            bindparam(f"end_{index}", type_=_POSTED_AT.type) > _POSTED_AT,
        )
        .label(f"m{index}")
        for index in range(count)
    ]
    return select(literal(1), *columns)


_POSTING_BOUNDS = select(
    select(_POSTED_AT)
    .where(_POSTING_TABLE.c.account_id == bindparam("account_id"))
    .order_by(_POSTED_AT)
    .limit(1)
    .scalar_subquery(),
    select(_POSTED_AT)
    .where(_POSTING_TABLE.c.account_id == bindparam("account_id"))
    .order_by(_POSTED_AT.desc())
    .limit(1)
    .scalar_subquery(),
)


def _active_months(
    connection: Connection, *, account_id: uuid.UUID, candidates: Sequence[Month], zone: ZoneInfo
) -> list[Month]:
    """Which of `candidates` have a posting: one EXISTS probe of the index per month."""
    params: dict[str, Any] = {"account_id": account_id}
    for index, month in enumerate(candidates):
        params[f"start_{index}"] = month.starts_at(zone)
        params[f"end_{index}"] = month.next().starts_at(zone)
    row = reads.first(connection, _months_probe(len(candidates)), params)
    return [month for month, active in zip(candidates, row[1:], strict=True) if active]


def list_months_sync(
    connection: Connection,
    *,
    principal: Principal | None,
    account_id: uuid.UUID,
    timezone: str,
    limit: int,
    before: Month | None = None,
) -> tuple[list[Month], bool]:
    """Months with at least one posting, newest first, and whether there are more.

    Costs two index look-ups (first and last posting) and one EXISTS probe per month looked
    at, never a scan of the account's postings.
    """
    zone = ZoneInfo(timezone)
    _account_sync(connection, principal=principal, account_id=account_id)
    bounds = reads.first(connection, _POSTING_BOUNDS, {"account_id": account_id})
    found: list[Month] = []
    if bounds[0] is None:
        return found, False
    first, last = Month.containing(bounds[0], zone), Month.containing(bounds[1], zone)
    cursor = last if before is None else min(last, before.previous())
    while cursor >= first and len(found) <= limit:
        candidates: list[Month] = []
        while cursor >= first and len(candidates) < MONTHS_PER_PROBE:
            candidates.append(cursor)
            cursor = cursor.previous()
        found.extend(
            _active_months(connection, account_id=account_id, candidates=candidates, zone=zone)
        )
    return found[:limit], len(found) > limit


async def list_months(
    session: AsyncSession,
    *,
    principal: Principal | None,
    account_id: uuid.UUID,
    timezone: str,
    limit: int,
    before: Month | None = None,
) -> tuple[list[Month], bool]:
    """`list_months_sync` on `session`'s connection (the CLI and benchmarks)."""
    connection = await session.connection()
    try:
        return await connection.run_sync(
            lambda sync: list_months_sync(
                sync,
                principal=principal,
                account_id=account_id,
                timezone=timezone,
                limit=limit,
                before=before,
            )
        )
    finally:
        await session.rollback()
