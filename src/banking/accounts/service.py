"""Accounts: opening, naming, freezing, daily limits and the account lookup.

Guarantees: a member sees and names only their own accounts (anything else is 404);
account numbers are unique, random and carry a Luhn check digit; `frozen` is set by admins
only and lifted only when a second admin approves (`banking.approvals`, kind
`account_unfreeze`); a daily outgoing limit above the bank's default is likewise set only
on a second admin's approval. Balances are never written here (only `banking.ledger`
writes them). Closing an account and the reads that show what it holds depend on the
ledger's lapsed card holds rule: they live in `banking.ledger.accounts`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import numbers
from banking.accounts.models import Account, AccountStatus
from banking.accounts.models import AccountRef as AccountRef
from banking.accounts.schemas import AccountOpenIn
from banking.audit import service as audit
from banking.core import reads
from banking.core.db import database_of, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, NotFound
from banking.events import outbox
from banking.holders.models import AccountHolder
from banking.identity.service import Principal
from banking.ledger.writer import writer_for

ACCOUNT = cast(Table, Account.__table__)
_HOLDER = cast(Table, AccountHolder.__table__)


def account_event_data(account: Any) -> dict[str, Any]:
    """An account as events show it (docs/events.md), shaped like `AccountOut`."""
    return {
        "id": account.id,
        "number": account.number,
        "type": account.type,
        "currency": account.currency,
        "status": account.status,
        "nickname": account.nickname,
        "balance": account.balance_minor,
        "available_balance": account.balance_minor - account.held_minor,
        "held": account.held_minor,
        "created_at": account.created_at,
        "closed_at": account.closed_at,
    }


def account_event_sync(connection: Connection, event_type: str, account_id: uuid.UUID) -> None:
    """Emit `event_type` (`account.*`) with the account as it now is."""
    account = connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).one()
    outbox.emit_sync(
        connection,
        type=event_type,
        owner_id=account.owner_id,
        subject_type="account",
        subject_id=account.id,
        account_id=account.id,
        data=account_event_data(account),
    )


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
                await outbox.emit(
                    session,
                    type="account.opened",
                    owner_id=account.owner_id,
                    subject_type="account",
                    subject_id=account.id,
                    account_id=account.id,
                    data=account_event_data(account),
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


_LOOKUP = (
    select(ACCOUNT.c.number, ACCOUNT.c.currency, _HOLDER.c.first_name, _HOLDER.c.last_name)
    .select_from(ACCOUNT.outerjoin(_HOLDER, _HOLDER.c.user_id == ACCOUNT.c.owner_id))
    .where(
        ACCOUNT.c.number == bindparam("number"),
        ACCOUNT.c.is_internal.is_(False),
        ACCOUNT.c.status != AccountStatus.closed.value,
    )
)


def lookup_sync(connection: Connection, *, number: str) -> HolderView:
    """What a sender needs to confirm a payee: masked name and currency, active only."""
    row = reads.first(connection, _LOOKUP, {"number": number})
    if row is None or row.number is None:
        raise NotFound("No open account has this number.")
    name = numbers.mask_name(row.first_name, row.last_name)
    return HolderView(number=row.number, currency=row.currency, holder_name=name)


_CUSTOMER = ACCOUNT.c.is_internal.is_(False)
_OWNS = select(ACCOUNT.c.id).where(
    ACCOUNT.c.id == bindparam("account_id"), ACCOUNT.c.owner_id == bindparam("owner_id"), _CUSTOMER
)


def check_owned_sync(
    connection: Connection, principal: Principal, *, account_id: uuid.UUID
) -> None:
    """404 unless the account is the caller's."""
    params = {"account_id": account_id, "owner_id": principal.user_id}
    if reads.first(connection, _OWNS, params) is None:
        raise NotFound("No such account.")


def _set_status_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    from_status: AccountStatus,
    to_status: AccountStatus,
    actor_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
    details: dict[str, Any] | None = None,
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
        details={**({"reason": reason} if reason else {}), **(details or {})} or None,
    )
    account_event_sync(
        connection,
        "account.frozen" if to_status is AccountStatus.frozen else "account.unfrozen",
        account_id,
    )


async def freeze(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
) -> Account:
    """Freeze an active account: no debits, credits allowed. Admins only (checked by the
    route). Lifting it takes a second admin: `banking.approvals` calls `unfreeze_sync`."""
    await get_any(session, account_id=account_id)
    await session.rollback()
    await writer_for(database_of(session)).run(
        lambda connection: _set_status_sync(
            connection,
            account_id=account_id,
            from_status=AccountStatus.active,
            to_status=AccountStatus.frozen,
            actor_id=principal.user_id,
            reason=reason,
            client=client,
        )
    )
    session.expunge_all()
    return await get_any(session, account_id=account_id)


def unfreeze_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    checker_id: uuid.UUID,
    maker_id: uuid.UUID,
    approval_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
) -> None:
    """Lift a freeze, as an approved `account_unfreeze` does it (in the approval's
    transaction): audited with both people. Raises `AccountStatusConflict` when the account
    is not frozen."""
    _set_status_sync(
        connection,
        account_id=account_id,
        from_status=AccountStatus.frozen,
        to_status=AccountStatus.active,
        actor_id=checker_id,
        reason=reason,
        client=client,
        details={"maker_id": maker_id, "checker_id": checker_id, "approval_id": approval_id},
    )


def set_daily_limit_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    limit_minor: int | None,
    default_limit_minor: int,
    actor_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
    now: dt.datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Set (None: return to the bank's default) an account's daily outgoing limit, with
    its audit row and `account.limit_changed` event. The caller decides whether it needs a
    second person (`banking.approvals`)."""
    connection.execute(
        update(ACCOUNT)
        .where(ACCOUNT.c.id == account_id)
        .values(daily_outgoing_limit_minor=limit_minor)
    )
    audit.record_sync(
        connection,
        event_type="account.limit_changed",
        actor_id=actor_id,
        target_type="account",
        target_id=account_id,
        client=client,
        occurred_at=now,
        details={
            "daily_outgoing_limit_minor": limit_minor,
            **({"reason": reason} if reason else {}),
            **(details or {}),
        },
    )
    account = connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).one()
    outbox.emit_sync(
        connection,
        type="account.limit_changed",
        owner_id=account.owner_id,
        subject_type="account",
        subject_id=account.id,
        account_id=account.id,
        data={
            **account_event_data(account),
            "daily_outgoing_limit": account.daily_outgoing_limit_minor or default_limit_minor,
        },
    )
