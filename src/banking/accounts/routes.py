"""Accounts: open, list, rename, close, look up a payee, read balances."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.accounts import service as accounts
from banking.accounts.schemas import (
    AccountNumber,
    AccountOpenIn,
    AccountOut,
    AccountUpdateIn,
    BalanceHistoryOut,
    BalanceOut,
    BalancePoint,
    BalancesItem,
    BalancesOut,
    LookupOut,
    account_out,
)
from banking.core.deps import AppSettings, Client, DbSession
from banking.core.errors import InvalidRequest
from banking.core.ratelimit import rate_limit
from banking.core.schemas import Page
from banking.identity.deps import CurrentUser, MemberRead, run_read
from banking.identity.service import Principal
from banking.ledger import accounts as ledger_accounts
from banking.ledger import history

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.get("/accounts/{account_id}/balance", response_model=BalanceOut)
async def get_balance(
    account_id: uuid.UUID,
    read: MemberRead,
    verify: bool = False,
    at: Annotated[
        AwareDatetime | None,
        Query(
            description=(
                "An RFC 3339 instant with its zone (e.g. 2026-09-05T18:00:00+02:00): the "
                "balance and what was held then (422 `at_in_future` after now; 0 before "
                "the account's first movement)."
            )
        ),
    ] = None,
) -> Response:
    """Balance and available balance. With `?verify=true` the balance is also recomputed
    from the account's postings and `consistent` says whether all agree. With `?at=` they
    are those at that instant, from the postings' `balance_after` (one index lookup)."""
    now = read.now

    def balance(connection: Connection, principal: Principal) -> BalanceOut:
        if at is not None:
            return _balance_at(connection, principal, account_id=account_id, at=at, now=now)
        account = ledger_accounts.owned_account_sync(
            connection, principal, account_id=account_id, now=now
        )
        if not verify:
            return BalanceOut(
                account_id=account.id,
                currency=account.currency,
                balance=account.balance_minor,
                available_balance=account.balance_minor - account.held_minor,
                held=account.held_minor,
            )
        check = history.check_balance_sync(connection, account_id=account.id, now=now)
        return BalanceOut(
            account_id=account.id,
            currency=account.currency,
            balance=check.balance_minor,
            available_balance=check.balance_minor - check.held_minor,
            held=check.held_minor,
            computed_balance=check.sum_minor,
            last_balance_after=check.last_balance_after_minor,
            consistent=check.consistent,
        )

    return await read.json(balance)


class AtInFuture(InvalidRequest):
    code = "at_in_future"
    title = "`at` is later than now: a balance is known only up to now."


class AtOutOfRange(InvalidRequest):
    code = "at_out_of_range"
    title = "`at` is before the first representable instant (year 1, UTC)."


class InvalidDateRange(InvalidRequest):
    code = "invalid_date_range"
    title = "`from` must not be after `to`, and the range is at most 366 days."


class DateInFuture(InvalidRequest):
    code = "date_in_future"
    title = "`to` is after today (in the bank's time zone)."


def _balance_at(
    connection: Connection,
    principal: Principal,
    *,
    account_id: uuid.UUID,
    at: dt.datetime,
    now: dt.datetime,
) -> BalanceOut:
    if at > now:
        raise AtInFuture()
    try:
        instant = at.astimezone(dt.UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+05:00: before year 1 in UTC
        raise AtOutOfRange() from exc
    account = ledger_accounts.owned_account_sync(
        connection, principal, account_id=account_id, now=now
    )
    point = history.balance_at_sync(connection, account_id=account.id, at=instant)
    return BalanceOut(
        account_id=account.id,
        currency=account.currency,
        balance=point.balance_minor,
        available_balance=point.balance_minor - point.held_minor,
        held=point.held_minor,
        at=instant,
    )


DEFAULT_CHART_DAYS = 90


@router.get("/accounts/{account_id}/balance-history", response_model=BalanceHistoryOut)
async def balance_history(
    account_id: uuid.UUID,
    read: MemberRead,
    date_from: Annotated[
        dt.date | None,
        Query(alias="from", description="First day (YYYY-MM-DD); default: 89 days before `to`."),
    ] = None,
    date_to: Annotated[
        dt.date | None,
        Query(alias="to", description="Last day (YYYY-MM-DD); default: the bank's today."),
    ] = None,
) -> Response:
    """The balance at the end of each day from `from` to `to` (both included, at most 366
    days, days in the bank's time zone BANK_TIMEZONE; today's point is the balance so
    far; 0 before the account's first movement), for charts; by default the last 90 days.
    Each point is the point-in-time lookup of `GET .../balance?at=`, all in one statement."""
    now = read.now
    zone = ZoneInfo(read.settings.bank_timezone)
    last = date_to if date_to is not None else now.astimezone(zone).date()
    first = date_from if date_from is not None else last - dt.timedelta(days=DEFAULT_CHART_DAYS - 1)

    def points(connection: Connection, principal: Principal) -> BalanceHistoryOut:
        # Ownership first: someone else's account is 404 whatever the dates say.
        account = ledger_accounts.owned_account_sync(
            connection, principal, account_id=account_id, now=now
        )
        if first > last or (last - first).days >= history.MAX_DAYS:
            raise InvalidDateRange()
        if last > now.astimezone(zone).date():
            raise DateInFuture()
        days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        ends = [_start_of(day + dt.timedelta(days=1), zone) for day in days]
        balances = history.closing_balances_sync(connection, account_id=account.id, ends=ends)
        return BalanceHistoryOut(
            account_id=account.id,
            currency=account.currency,
            items=[
                BalancePoint(date=day, balance=value)
                for day, value in zip(days, balances, strict=True)
            ],
        )

    return await read.json(points)


def _start_of(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The instant (UTC) the day begins in `zone`."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


@router.post("/accounts", status_code=201, response_model=AccountOut)
async def open_account(
    body: AccountOpenIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Open a checking or savings account in a supported currency (default USD)."""
    account = await accounts.open_account(session, principal=user, request=body, client=client)
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)


@router.get("/accounts", response_model=Page[AccountOut])
async def list_accounts(read: MemberRead) -> Response:
    """Your accounts, oldest first."""
    limit, now = read.settings.daily_outgoing_limit_minor, read.now

    def page(connection: Connection, principal: Principal) -> Page[AccountOut]:
        rows = ledger_accounts.owned_accounts_sync(connection, principal, now=now)
        return Page[AccountOut](
            items=[account_out(row, default_daily_limit_minor=limit) for row in rows],
            next_cursor=None,
        )

    return await read.json(page)


@router.get("/accounts/lookup", response_model=LookupOut)
async def lookup_account(
    request: Request,
    user: Annotated[Principal, rate_limit("lookup", per="user")],
    number: Annotated[AccountNumber, Query(description="The payee's 12-digit account number.")],
) -> Response:
    """Confirm a payee before a transfer: the masked holder name and the currency."""
    # Authenticated by the per-user rate limit (the session check counts the request).
    view = await run_read(request, functools.partial(accounts.lookup_sync, number=number))
    out = LookupOut(number=view.number, currency=view.currency, holder_name=view.holder_name)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/balances", response_model=BalancesOut)
async def balances(read: MemberRead) -> Response:
    """Every one of your accounts' balances, read together in one consistent snapshot."""
    now = read.now

    def snapshot(connection: Connection, principal: Principal) -> BalancesOut:
        rows = ledger_accounts.owned_accounts_sync(connection, principal, now=now)
        return BalancesOut(
            items=[
                BalancesItem(
                    account_id=row.id,
                    number=row.number,
                    type=row.type,
                    status=row.status,
                    currency=row.currency,
                    balance=row.balance_minor,
                    available_balance=row.balance_minor - row.held_minor,
                    held=row.held_minor,
                )
                for row in rows
            ],
            as_of=now,
        )

    return await read.json(snapshot)


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: uuid.UUID, read: MemberRead) -> Response:
    """One of your accounts."""
    limit, now = read.settings.daily_outgoing_limit_minor, read.now

    def detail(connection: Connection, principal: Principal) -> AccountOut:
        row = ledger_accounts.owned_account_sync(
            connection, principal, account_id=account_id, now=now
        )
        return account_out(row, default_daily_limit_minor=limit)

    return await read.json(detail)


@router.patch("/accounts/{account_id}", response_model=AccountOut)
async def update_account(
    account_id: uuid.UUID,
    body: AccountUpdateIn,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Change the account's nickname (the only field a member may change)."""
    account = await accounts.rename(
        session, principal=user, account_id=account_id, nickname=body.nickname, client=client
    )
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)


@router.post("/accounts/{account_id}/close", response_model=AccountOut)
async def close_account(
    account_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    settings: AppSettings,
    client: Client,
) -> AccountOut:
    """Close the account for good. Only at a zero balance with no open card holds."""
    account = await ledger_accounts.close_account(
        session, principal=user, account_id=account_id, client=client
    )
    return account_out(account, default_daily_limit_minor=settings.daily_outgoing_limit_minor)
