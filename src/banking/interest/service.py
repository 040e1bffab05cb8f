"""Savings interest: daily accrual, monthly posting through the ledger.

Guarantees: each savings account has a nominal annual rate (its latest rate whose
`effective_on` is not after the day, else `SAVINGS_RATE_BPS`); rate changes are kept as
history, never edited. Each day of a bank-time-zone calendar (`BANK_TIMEZONE`) accrues
`end-of-day balance * rate / 10,000 / 365` (actual/365, also in leap years) in integer
micro-units of the minor unit (10^-6 cent), rounded half-even: no floats anywhere. A day
accrues once (primary key (account, day)), only once it is over. A month's interest is
its accruals plus the remainder carried from the previous month, posted rounded
half-even to the minor unit as ONE `interest` ledger entry from the currency's
interest-expense account; the new remainder (at most half a minor unit either way) is
carried to the next month, so nothing is lost over a year. A month is posted once per
account (unique (account, month), written in the ledger entry's commit). Running
`accrue` or `post` twice never accrues or posts twice. `banking ledger verify` checks
that interest entries balance against the interest-expense accounts and match their
`interest_posting` rows (`interest_expense`, `interest_posting`).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus, AccountType
from banking.audit import service as audit
from banking.core import reads
from banking.core.config import Settings
from banking.core.db import Database, database_of, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import InvalidRequest, NotFound
from banking.core.logging import get_logger
from banking.identity.service import Principal
from banking.interest.models import InterestAccrual, InterestPosting, InterestRate
from banking.ledger import internal
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind, Posting
from banking.ledger.writer import writer_for

log = get_logger("banking.interest")
ACCOUNT = cast(Table, Account.__table__)
POSTING = cast(Table, Posting.__table__)
RATE = cast(Table, InterestRate.__table__)
ACCRUAL = cast(Table, InterestAccrual.__table__)
MONTHLY = cast(Table, InterestPosting.__table__)
MICRO = 1_000_000
DAYS_PER_YEAR = 365
MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class NotSavings(InvalidRequest):
    code = "not_savings"
    title = "Interest rates apply to savings accounts only."


class RateInPast(InvalidRequest):
    code = "rate_in_past"
    title = "A rate change takes effect today or later: accrued days are never re-rated."


class PeriodNotOver(InvalidRequest):
    code = "period_not_over"
    title = "Interest accrues for days that are over and posts for months that are over."


def div_half_even(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half to even, in integers (denominator > 0)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def day_interest_micro(balance_minor: int, rate_bps: int) -> int:
    """One day's interest in micro-units: balance * rate_bps / 10^4 / 365 * 10^6."""
    return div_half_even(balance_minor * rate_bps * (MICRO // 10_000), DAYS_PER_YEAR)


def parse_month(text: str) -> tuple[int, int]:
    found = MONTH_PATTERN.match(text)
    if found is None:
        raise InvalidRequest("The month must be written YYYY-MM.")
    return int(found.group(1)), int(found.group(2))


def month_days(year: int, month: int) -> tuple[dt.date, dt.date]:
    first = dt.date(year, month, 1)
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def bank_today(db: Database) -> dt.date:
    return db.clock().astimezone(ZoneInfo(db.settings.bank_timezone)).date()


def interest_expense_account_id(currency: str) -> uuid.UUID:
    return internal.internal_account_id(internal.Purpose.interest_expense, currency)


# -- rates


@dataclass(frozen=True, slots=True)
class RateChange:
    rate_bps: int
    effective_on: dt.date
    set_by: uuid.UUID | None
    reason: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RateView:
    account_id: uuid.UUID
    rate_bps: int
    """Today's rate."""
    default_rate_bps: int
    history: list[RateChange]


def rate_on(history: list[RateChange], day: dt.date, default_bps: int) -> int:
    """The rate of `day`: the last change (in the order made) effective on or before it."""
    rate = default_bps
    for change in history:
        if change.effective_on <= day:
            rate = change.rate_bps
    return rate


def _history_sync(connection: Connection, account_id: uuid.UUID) -> list[RateChange]:
    rows = connection.execute(
        select(
            RATE.c.rate_bps, RATE.c.effective_on, RATE.c.set_by, RATE.c.reason, RATE.c.created_at
        )
        .where(RATE.c.account_id == account_id)
        .order_by(RATE.c.id)
    ).all()
    return [RateChange(*row) for row in rows]


async def rate_view(db: Database, *, account_id: uuid.UUID) -> RateView:
    history = await writer_for(db).read(lambda connection: _history_sync(connection, account_id))
    default = db.settings.savings_rate_bps
    return RateView(account_id, rate_on(history, bank_today(db), default), default, history)


# The read path's statements (fixed, compiled once: core/reads.py).
_HISTORY = (
    select(RATE.c.rate_bps, RATE.c.effective_on, RATE.c.set_by, RATE.c.reason, RATE.c.created_at)
    .where(RATE.c.account_id == bindparam("account_id"))
    .order_by(RATE.c.id)
)
_RATED_ACCOUNT = select(ACCOUNT.c.owner_id, ACCOUNT.c.type).where(
    ACCOUNT.c.id == bindparam("account_id"), ACCOUNT.c.is_internal.is_(False)
)


def get_rates_sync(
    connection: Connection,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    staff: bool,
    settings: Settings,
    now: dt.datetime,
) -> RateView:
    """The account's rate as of `now` and its history: the owner's (404 for anyone
    else's), or any customer account's for staff; 422 `not_savings` for another type."""
    account = reads.first(connection, _RATED_ACCOUNT, {"account_id": account_id})
    if account is None or (not staff and account.owner_id != principal.user_id):
        raise NotFound("No such account.")
    if account.type != AccountType.savings.value:
        raise NotSavings()
    history = [
        RateChange(*row) for row in reads.rows(connection, _HISTORY, {"account_id": account_id})
    ]
    today = now.astimezone(ZoneInfo(settings.bank_timezone)).date()
    default = settings.savings_rate_bps
    return RateView(account_id, rate_on(history, today, default), default, history)


async def set_rate(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    rate_bps: int,
    effective_on: dt.date | None,
    reason: str | None,
    client: ClientInfo,
) -> RateView:
    """Staff set a savings account's rate from `effective_on` (today when None)."""
    db = database_of(session)
    today = bank_today(db)
    day = effective_on or today
    if day < today:
        raise RateInPast()
    async with write_transaction(session):
        account = await accounts.get_any(session, account_id=account_id)
        if account.is_internal or account.type != AccountType.savings.value:
            raise NotSavings()
        await session.execute(
            insert(RATE).values(
                account_id=account_id,
                rate_bps=rate_bps,
                effective_on=day,
                set_by=principal.user_id,
                reason=reason,
                created_at=db.clock(),
            )
        )
        await audit.record(
            session,
            event_type="interest.rate_set",
            actor_id=principal.user_id,
            target_type="account",
            target_id=account_id,
            client=client,
            details={"rate_bps": rate_bps, "effective_on": day.isoformat()},
        )
    return await rate_view(db, account_id=account_id)


# -- accrual


@dataclass(slots=True)
class AccrualReport:
    accounts: int = 0
    days: int = 0
    interest_micro: int = 0


def _day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)


def _savings_accounts_sync(connection: Connection) -> list[Any]:
    return list(
        connection.execute(
            select(ACCOUNT.c.id, ACCOUNT.c.currency, ACCOUNT.c.created_at)
            .where(
                ACCOUNT.c.type == AccountType.savings.value,
                ACCOUNT.c.is_internal.is_(False),
                ACCOUNT.c.status != AccountStatus.closed.value,
            )
            .order_by(ACCOUNT.c.id)
        ).all()
    )


def _accrue_account_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    opened_at: dt.datetime,
    through: dt.date,
    zone: ZoneInfo,
    default_bps: int,
) -> tuple[int, int]:
    """Accrue the account's days after its last accrued one, up to `through`. Returns
    (days, micro-units) accrued."""
    last = connection.execute(
        select(func.max(ACCRUAL.c.accrued_on)).where(ACCRUAL.c.account_id == account_id)
    ).scalar()
    # The account accrues from the day it was opened (or of its first posting, should a
    # clock have stamped that earlier).
    first_posted = connection.execute(
        select(func.min(POSTING.c.created_at)).where(POSTING.c.account_id == account_id)
    ).scalar()
    opened_on = min(
        moment.astimezone(zone).date() for moment in (opened_at, first_posted) if moment
    )
    first = max(opened_on, last + dt.timedelta(days=1)) if last else opened_on
    if first > through:
        return 0, 0
    start, end = _day_start(first, zone), _day_start(through + dt.timedelta(days=1), zone)
    before = connection.execute(
        select(POSTING.c.balance_after_minor)
        .where(POSTING.c.account_id == account_id, POSTING.c.created_at < start)
        .order_by(POSTING.c.id.desc())
        .limit(1)
    ).scalar()
    # Per account, posting times follow posting ids (`banking ledger verify`,
    # `posting_time_order`), so walking by id walks the days in order.
    changes = connection.execute(
        select(POSTING.c.created_at, POSTING.c.balance_after_minor)
        .where(
            POSTING.c.account_id == account_id,
            POSTING.c.created_at >= start,
            POSTING.c.created_at < end,
        )
        .order_by(POSTING.c.id)
    ).all()
    history = _history_sync(connection, account_id)
    balance = before or 0
    index = 0
    rows: list[dict[str, Any]] = []
    total = 0
    day = first
    while day <= through:
        day_end = _day_start(day + dt.timedelta(days=1), zone)
        while index < len(changes) and changes[index][0] < day_end:
            balance = changes[index][1]
            index += 1
        rate = rate_on(history, day, default_bps)
        micro = day_interest_micro(balance, rate)
        total += micro
        rows.append(
            {
                "account_id": account_id,
                "accrued_on": day,
                "balance_minor": balance,
                "rate_bps": rate,
                "interest_micro": micro,
            }
        )
        day += dt.timedelta(days=1)
    connection.execute(insert(ACCRUAL), rows)
    return len(rows), total


async def accrue(db: Database, *, through: dt.date) -> AccrualReport:
    """Accrue every open savings account's days up to `through` (a day that is over).
    Each account is one short transaction on the ledger's writer."""
    if through >= bank_today(db):
        raise PeriodNotOver(f"{through} is not over yet in {db.settings.bank_timezone}.")
    zone = ZoneInfo(db.settings.bank_timezone)
    writer = writer_for(db)
    report = AccrualReport()
    for account_id, _currency, opened_at in await writer.read(_savings_accounts_sync):

        def work(
            connection: Connection, account_id: uuid.UUID = account_id, opened: Any = opened_at
        ) -> tuple[int, int]:
            return _accrue_account_sync(
                connection,
                account_id=account_id,
                opened_at=opened,
                through=through,
                zone=zone,
                default_bps=db.settings.savings_rate_bps,
            )

        days, micro = await writer.run(work)
        report.accounts += 1 if days else 0
        report.days += days
        report.interest_micro += micro
    return report


# -- monthly posting


@dataclass(slots=True)
class PostingReport:
    month: str
    accounts: int = 0
    posted_minor: dict[str, int] = field(default_factory=dict)
    already_posted: int = 0
    declined: int = 0


def _post_account_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    currency: str,
    month: str,
    first: dt.date,
    last: dt.date,
    limits: ledger.Limits,
    now: dt.datetime,
) -> tuple[str, int]:
    """Post the account's interest for `month`: ('posted' | 'nothing' | 'already' |
    'declined', minor units posted)."""
    if connection.execute(
        select(MONTHLY.c.id).where(MONTHLY.c.account_id == account_id, MONTHLY.c.month == month)
    ).first():
        return "already", 0
    accrued = connection.execute(
        select(func.count(), func.coalesce(func.sum(ACCRUAL.c.interest_micro), 0)).where(
            ACCRUAL.c.account_id == account_id,
            ACCRUAL.c.accrued_on >= first,
            ACCRUAL.c.accrued_on <= last,
        )
    ).one()
    if accrued[0] == 0:
        return "nothing", 0
    accrued_micro = int(accrued[1])
    carried_in = (
        connection.execute(
            select(MONTHLY.c.carried_out_micro)
            .where(MONTHLY.c.account_id == account_id, MONTHLY.c.month < month)
            .order_by(MONTHLY.c.month.desc())
            .limit(1)
        ).scalar()
        or 0
    )
    total = carried_in + accrued_micro
    posted = max(div_half_even(total, MICRO), 0)
    entry_id = None
    status = "nothing"
    if posted > 0:
        result = ledger.post_sync(
            connection,
            ledger.Movement(
                kind=EntryKind.interest,
                source_account_id=interest_expense_account_id(currency),
                target_account_id=account_id,
                origin_account_id=account_id,
                amount_minor=posted,
                currency=currency,
                description=f"Interest {month}",
            ),
            limits=limits,
            now=now,
        )
        assert result.outcome is not None
        entry_id = result.outcome.entry_id
        if result.outcome.posted:
            status = "posted"
        else:
            # Recorded by the ledger (e.g. the balance limit): the interest stays carried.
            status, posted = "declined", 0
    connection.execute(
        insert(MONTHLY).values(
            account_id=account_id,
            month=month,
            accrued_micro=accrued_micro,
            carried_in_micro=carried_in,
            posted_minor=posted,
            carried_out_micro=total - posted * MICRO,
            entry_id=entry_id,
            created_at=now,
        )
    )
    return status, posted


async def post_month(db: Database, *, month: str) -> PostingReport:
    """Post `month` (YYYY-MM, over in the bank's time zone) for every open savings account,
    accruing its days first. Each account is one transaction on the ledger's writer."""
    year, number = parse_month(month)
    first, last = month_days(year, number)
    if last >= bank_today(db):
        raise PeriodNotOver(f"{month} is not over yet in {db.settings.bank_timezone}.")
    await accrue(db, through=last)
    writer = writer_for(db)
    # The interest-expense accounts exist once an API process has started; a first run
    # from the command line creates them too.
    await writer.run(internal.ensure_internal_accounts)
    limits = ledger.Limits.from_settings(db.settings)
    report = PostingReport(month=month)
    for account_id, currency, _opened in await writer.read(_savings_accounts_sync):

        def work(
            connection: Connection, account_id: uuid.UUID = account_id, currency: str = currency
        ) -> tuple[str, int]:
            return _post_account_sync(
                connection,
                account_id=account_id,
                currency=currency,
                month=month,
                first=first,
                last=last,
                limits=limits,
                now=db.clock(),
            )

        status, posted = await writer.run(work)
        if status == "already":
            report.already_posted += 1
        elif status == "declined":
            report.declined += 1
        elif status == "posted":
            report.accounts += 1
            report.posted_minor[currency] = report.posted_minor.get(currency, 0) + posted
    return report


async def run_due(db: Database) -> tuple[AccrualReport, PostingReport]:
    """The daily job's step: accrue through yesterday, post last month (both idempotent)."""
    today = bank_today(db)
    accrued = await accrue(db, through=today - dt.timedelta(days=1))
    previous = today.replace(day=1) - dt.timedelta(days=1)
    posted = await post_month(db, month=f"{previous.year:04d}-{previous.month:02d}")
    return accrued, posted
