"""Accounts: opening, naming, closing, freezing, and reading balances.

Guarantees: a member sees and names only their own accounts (anything else is 404);
account numbers are unique, random and carry a Luhn check digit; `closed` is final and
only reachable at zero balance with no open holds, checked under the account's lock so no
movement can slip in between; `frozen` is set and lifted by admins only. Balances are
never written here (only `banking.ledger` writes them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    column,
    exists,
    select,
    table,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from banking.accounts import numbers
from banking.accounts.models import Account, AccountStatus
from banking.accounts.schemas import AccountOpenIn
from banking.audit import service as audit
from banking.core.db import UTCDateTime, database_of, utcnow, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, NotFound
from banking.core.prepared import Prepared
from banking.core.security import AccessClaims
from banking.holders.models import AccountHolder
from banking.identity import service as identity
from banking.identity.service import Principal
from banking.ledger.writer import writer_for

ACCOUNT = cast(Table, Account.__table__)
NUMBER_ATTEMPTS = 8


class AccountNotEmpty(Conflict):
    code = "account_not_empty"
    title = "Only an account with a zero balance and no open holds can be closed."


class AccountAlreadyClosed(Conflict):
    code = "account_closed"
    title = "The account is closed."


class AccountStatusConflict(Conflict):
    code = "account_status_conflict"
    title = "The account is not in a status that allows this change."


async def open_account(
    session: AsyncSession, *, principal: Principal, request: AccountOpenIn, client: ClientInfo
) -> Account:
    for _attempt in range(NUMBER_ATTEMPTS):
        account = Account(
            number=numbers.generate(),
            owner_id=principal.user_id,
            is_internal=False,
            type=request.type,
            currency=request.currency,
            status=AccountStatus.active.value,
            nickname=request.nickname,
        )
        try:
            async with write_transaction(session):
                session.add(account)
                await session.flush()
                await audit.record(
                    session,
                    event_type="account.opened",
                    actor_id=principal.user_id,
                    target_type="account",
                    target_id=account.id,
                    client=client,
                    details={"type": request.type, "currency": request.currency},
                )
        except IntegrityError:
            # A number collision (1 in 10^11 per open account): draw another.
            session.expunge_all()
            continue
        return account
    raise RuntimeError("could not draw a free account number")  # pragma: no cover


async def list_accounts(session: AsyncSession, *, principal: Principal) -> list[Account]:
    rows = await session.execute(
        select(Account)
        .where(Account.owner_id == principal.user_id)
        .order_by(Account.created_at, Account.id)
    )
    return list(rows.scalars())


async def find_account(session: AsyncSession, account_id: uuid.UUID) -> Account | None:
    account = (
        await session.execute(
            select(Account).where(Account.id == account_id, Account.is_internal.is_(False))
        )
    ).scalar_one_or_none()
    return account


async def get_owned(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID
) -> Account:
    """The caller's account; 404 for anyone else's, so ids cannot be probed."""
    account = await find_account(session, account_id)
    if account is None or account.owner_id != principal.user_id:
        raise NotFound("No such account.")
    return account


async def get_any(session: AsyncSession, *, account_id: uuid.UUID) -> Account:
    """Any customer account (staff views)."""
    account = await find_account(session, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


async def find_by_number(session: AsyncSession, number: str) -> Account | None:
    return (
        await session.execute(
            select(Account).where(Account.number == number, Account.is_internal.is_(False))
        )
    ).scalar_one_or_none()


async def rename(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    nickname: str | None,
    client: ClientInfo,
) -> Account:
    async with write_transaction(session):
        account = await get_owned(session, principal=principal, account_id=account_id)
        account.nickname = nickname
        await audit.record(
            session,
            event_type="account.renamed",
            actor_id=principal.user_id,
            target_type="account",
            target_id=account.id,
            client=client,
        )
    return account


@dataclass(frozen=True, slots=True)
class HolderView:
    number: str
    currency: str
    holder_name: str


def _mask_name(name: str) -> str:
    return name[:1] + "***" if name else "***"


async def lookup(session: AsyncSession, *, number: str) -> HolderView:
    """What a sender needs to confirm a payee: masked name and currency, active only."""
    row = (
        await session.execute(
            select(
                Account.number, Account.currency, AccountHolder.first_name, AccountHolder.last_name
            )
            .join(AccountHolder, AccountHolder.user_id == Account.owner_id, isouter=True)
            .where(
                Account.number == number,
                Account.is_internal.is_(False),
                Account.status != AccountStatus.closed.value,
            )
        )
    ).first()
    if row is None or row.number is None:
        raise NotFound("No open account has this number.")
    name = f"{_mask_name(row.first_name or '')} {_mask_name(row.last_name or '')}"
    return HolderView(number=row.number, currency=row.currency, holder_name=name)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What a money request needs to know about an account, read on the ledger's connection."""

    id: uuid.UUID
    owner_id: uuid.UUID | None
    number: str | None
    currency: str


# Card holds, named without importing cards/ (which builds on this module).
_HOLD = table(
    "card_authorization",
    column("account_id", Uuid()),
    column("status", String()),
    column("expires_at", UTCDateTime()),
)
_HOLDS_DUE = (
    exists()
    .where(
        _HOLD.c.account_id == ACCOUNT.c.id,
        _HOLD.c.status == "approved",
        _HOLD.c.expires_at <= bindparam("now", type_=UTCDateTime()),
    )
    .label("holds_due")
)


def _session_with_accounts(*columns: Any, on: Any = true()) -> Select[Any]:
    """The session check's columns, then `columns` of the session user's accounts that
    match `on`: an outer join, so the session row comes back even with no account."""
    return (
        select(*identity.SESSION_STATE, *columns)
        .select_from(
            identity.SESSION_FROM.outerjoin(
                ACCOUNT,
                and_(
                    ACCOUNT.c.owner_id == identity.SESSION_STATE_OWNER,
                    ACCOUNT.c.is_internal.is_(False),
                    on,
                ),
            )
        )
        .where(*identity.SESSION_WHERE)
    )


_OWNED_BALANCE = _session_with_accounts(
    ACCOUNT.c.id,
    ACCOUNT.c.currency,
    ACCOUNT.c.balance_minor,
    ACCOUNT.c.held_minor,
    _HOLDS_DUE,
    on=ACCOUNT.c.id == bindparam("account_id"),
)


# Every account of the session's user, with the session check, in one statement: one
# snapshot (a single statement sees one state of the database on both engines).
_OWNED_BALANCES = _session_with_accounts(
    ACCOUNT.c.id,
    ACCOUNT.c.number,
    ACCOUNT.c.type,
    ACCOUNT.c.status,
    ACCOUNT.c.currency,
    ACCOUNT.c.balance_minor,
    ACCOUNT.c.held_minor,
    _HOLDS_DUE,
).order_by(ACCOUNT.c.created_at, ACCOUNT.c.id)
_PREPARED_OWNED_BALANCES = Prepared(_OWNED_BALANCES)


@dataclass(frozen=True, slots=True)
class BalancesRow:
    account_id: uuid.UUID
    number: str
    type: str
    status: str
    currency: str
    balance_minor: int
    held_minor: int


@dataclass(frozen=True, slots=True)
class BalancesView:
    principal: Principal
    rows: list[BalancesRow]
    holds_due: bool


def owned_balances_sync(
    connection: Connection, claims: AccessClaims, *, now: dt.datetime
) -> BalancesView:
    """The session check and all the caller's balances in one statement (401 when the
    session is no longer good); `holds_due` says whether a card hold has lapsed."""
    params = {**identity.session_params(claims), "now": now}
    rows = _PREPARED_OWNED_BALANCES.all(connection, params)
    principal = identity.session_checked(claims, rows[0] if rows else None, now=now)
    # Columns: the session state (3), then id, number, type, status, currency, balance,
    # held, holds_due.
    accounts = [
        BalancesRow(row[3], row[4] or "", row[5], row[6], row[7], row[8], row[9])
        for row in rows
        if row[3] is not None
    ]
    return BalancesView(principal, accounts, any(bool(row[10]) for row in rows))


# The hottest read: straight on the DBAPI cursor (see core/prepared.py).
_PREPARED_OWNED_BALANCE = Prepared(_OWNED_BALANCE)


@dataclass(frozen=True, slots=True)
class BalanceView:
    account_id: uuid.UUID
    currency: str
    balance_minor: int
    held_minor: int
    holds_due: bool


def owned_balance_sync(
    connection: Connection,
    claims: AccessClaims,
    *,
    account_id: uuid.UUID,
    now: dt.datetime,
) -> BalanceView:
    """The session check and the caller's account balance in one statement: 401 when the
    session is no longer good, then 404 for an account that is not the caller's."""
    params = {**identity.session_params(claims), "account_id": account_id, "now": now}
    row = _PREPARED_OWNED_BALANCE.first(connection, params)
    identity.session_checked(claims, row, now=now)
    assert row is not None
    # Columns: the session state (3), then id, currency, balance, held, holds_due.
    if row[3] is None:
        raise NotFound("No such account.")
    return BalanceView(row[3], row[4], row[5], row[6], bool(row[7]))


def _close_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    actor_id: uuid.UUID,
    client: ClientInfo,
) -> None:
    row = connection.execute(
        select(ACCOUNT.c.status, ACCOUNT.c.balance_minor, ACCOUNT.c.held_minor)
        .where(ACCOUNT.c.id == account_id)
        .with_for_update()
    ).one()
    if row.status == AccountStatus.closed.value:
        raise AccountAlreadyClosed()
    if row.balance_minor != 0 or row.held_minor != 0:
        raise AccountNotEmpty()
    now = utcnow()
    connection.execute(
        update(ACCOUNT)
        .where(ACCOUNT.c.id == account_id)
        .values(status=AccountStatus.closed.value, closed_at=now)
    )
    audit.record_sync(
        connection,
        event_type="account.closed",
        actor_id=actor_id,
        target_type="account",
        target_id=account_id,
        client=client,
        occurred_at=now,
    )


async def close_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID, client: ClientInfo
) -> Account:
    await get_owned(session, principal=principal, account_id=account_id)
    await session.rollback()
    await writer_for(database_of(session)).run(
        lambda connection: _close_sync(
            connection, account_id=account_id, actor_id=principal.user_id, client=client
        )
    )
    return await get_owned(session, principal=principal, account_id=account_id)


def _set_status_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    from_status: AccountStatus,
    to_status: AccountStatus,
    actor_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
) -> None:
    changed = connection.execute(
        update(ACCOUNT)
        .where(
            ACCOUNT.c.id == account_id,
            ACCOUNT.c.is_internal.is_(False),
            ACCOUNT.c.status == from_status.value,
        )
        .values(status=to_status.value)
    )
    if changed.rowcount != 1:
        raise AccountStatusConflict(
            f"Only an {from_status.value} account can be {to_status.value}."
        )
    audit.record_sync(
        connection,
        event_type=f"account.{to_status.value}"
        if to_status is AccountStatus.frozen
        else "account.unfrozen",
        actor_id=actor_id,
        target_type="account",
        target_id=account_id,
        client=client,
        details={"reason": reason} if reason else None,
    )


async def freeze(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
    unfreeze: bool = False,
) -> Account:
    """Freeze (no debits, credits allowed) or lift a freeze. Admins only (checked by the route)."""
    await get_any(session, account_id=account_id)
    await session.rollback()
    from_status, to_status = (
        (AccountStatus.frozen, AccountStatus.active)
        if unfreeze
        else (AccountStatus.active, AccountStatus.frozen)
    )
    await writer_for(database_of(session)).run(
        lambda connection: _set_status_sync(
            connection,
            account_id=account_id,
            from_status=from_status,
            to_status=to_status,
            actor_id=principal.user_id,
            reason=reason,
            client=client,
        )
    )
    session.expunge_all()
    return await get_any(session, account_id=account_id)
