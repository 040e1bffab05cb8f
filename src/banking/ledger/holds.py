"""Holds: money set aside on a customer account for an approved card payment.

The only code that changes `account.held_minor`. A hold lowers the available balance
(balance - held), never the balance; it ends by a capture (one journal entry that debits
the captured amount and releases the whole hold, see `capture_sync`), or by a release
(void or expiry). Guarantees: `held_minor` never goes below zero nor above the balance
through a placement; the account row is locked the way the ledger locks it (PostgreSQL
`SELECT ... FOR UPDATE`; SQLite: the caller's write transaction is `BEGIN IMMEDIATE` on
the ledger's writer); the open holds are the `approved` card authorizations, and their
sum per account equals `held_minor` (checked by `banking ledger verify`).

Everything here runs on a synchronous `Connection` inside the caller's transaction (the
ledger's writer), so a hold and the record that explains it commit together.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts.models import Account, AccountStatus
from banking.core.errors import NotFound
from banking.ledger import internal
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.ledger.verify import Problem, VerifyReport

ACCOUNT = cast(Table, Account.__table__)


@dataclass(frozen=True, slots=True)
class HeldAccount:
    """A customer account as read under its lock."""

    id: uuid.UUID
    status: str
    currency: str
    balance_minor: int
    held_minor: int

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.held_minor


def lock_account_sync(connection: Connection, account_id: uuid.UUID) -> HeldAccount:
    row = connection.execute(
        select(
            ACCOUNT.c.id,
            ACCOUNT.c.status,
            ACCOUNT.c.currency,
            ACCOUNT.c.balance_minor,
            ACCOUNT.c.held_minor,
        )
        .where(ACCOUNT.c.id == account_id, ACCOUNT.c.is_internal.is_(False))
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound("No such account.")
    return HeldAccount(*row)


def check_sync(
    account: HeldAccount, *, amount_minor: int, currency: str, limits: ledger.Limits
) -> ledger.Declined | None:
    """The ledger's rules for a debit, applied to a hold (writes nothing)."""
    if amount_minor < 1:
        raise ledger.LedgerInvariantError("a hold must be positive")
    if amount_minor > limits.max_movement_minor:
        return ledger.AmountTooLarge(
            f"The maximum for one movement is {limits.max_movement_minor} minor units."
        )
    if account.status == AccountStatus.closed.value:
        return ledger.AccountClosed()
    if account.status == AccountStatus.frozen.value:
        return ledger.AccountFrozen()
    if account.currency != currency:
        return ledger.CurrencyMismatch()
    if amount_minor > account.available_minor:
        return ledger.InsufficientFunds()
    return None


def place_sync(connection: Connection, account: HeldAccount, amount_minor: int) -> HeldAccount:
    """Hold `amount_minor` on an account locked by `lock_account_sync` (checked by
    `check_sync`). Returns the account as it is after the hold."""
    if amount_minor < 1 or amount_minor > account.available_minor:
        raise ledger.LedgerInvariantError("a hold must fit the available balance")
    _set_held(connection, account.id, account.held_minor + amount_minor)
    return HeldAccount(
        account.id,
        account.status,
        account.currency,
        account.balance_minor,
        account.held_minor + amount_minor,
    )


def release_sync(connection: Connection, account_id: uuid.UUID, amount_minor: int) -> None:
    """Release `amount_minor` of the account's holds (void or expiry)."""
    account = lock_account_sync(connection, account_id)
    if amount_minor < 0 or amount_minor > account.held_minor:
        raise ledger.LedgerInvariantError("releasing more than the account holds")
    _set_held(connection, account_id, account.held_minor - amount_minor)


def _set_held(connection: Connection, account_id: uuid.UUID, held_minor: int) -> None:
    updated = connection.execute(
        update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(held_minor=held_minor)
    )
    if updated.rowcount != 1:
        raise ledger.LedgerInvariantError("a locked account was not updated")


def capture_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    held_minor: int,
    amount_minor: int,
    currency: str,
    limits: ledger.Limits,
    now: dt.datetime,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> ledger.Result:
    """Debit `amount_minor` (at most the hold) to the card-network settlement account and
    release the whole `held_minor` in the same journal entry (the ledger's own posting
    code). A decline (e.g. the account was frozen since) is recorded by the ledger and
    leaves the hold in place."""
    if amount_minor < 1 or amount_minor > held_minor:
        raise ledger.LedgerInvariantError("a capture must be within its hold")
    movement = ledger.Movement(
        kind=EntryKind.card_capture,
        source_account_id=account_id,
        target_account_id=card_network_account_id(currency),
        origin_account_id=account_id,
        amount_minor=amount_minor,
        currency=currency,
        description=description,
        idempotency_key=idempotency_key,
        release_hold_minor=held_minor,
    )
    return ledger.post_sync(connection, movement, limits=limits, now=now)


def card_network_account_id(currency: str) -> uuid.UUID:
    return internal.internal_account_id(internal.Purpose.card_network, currency)


async def verify_holds(session: AsyncSession, report: VerifyReport) -> None:
    """Add to `report` every account whose `held_minor` differs from the sum of its open
    holds (approved card authorizations, expired or not: a lapsed hold is held until it is
    released). Runs in the caller's snapshot."""
    from banking.cards.models import AuthorizationStatus, CardAuthorization

    open_holds = (
        select(
            CardAuthorization.account_id.label("account_id"),
            func.sum(CardAuthorization.amount_minor).label("total"),
        )
        .where(CardAuthorization.status == AuthorizationStatus.approved.value)
        .group_by(CardAuthorization.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(Account.id, Account.held_minor, func.coalesce(open_holds.c.total, 0))
        .join(open_holds, open_holds.c.account_id == Account.id, isouter=True)
        .where(
            Account.is_internal.is_(False),
            Account.held_minor != func.coalesce(open_holds.c.total, 0),
        )
    )
    for account_id, held, total in rows:
        report.problems.append(
            Problem("held_matches_holds", str(account_id), f"held {held} != open holds {total}")
        )
