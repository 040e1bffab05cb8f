"""Holds: money set aside on a customer account for an approved card payment.

The only code that changes `account.held_minor`. A hold lowers the available balance
(balance - held), never the balance; it ends by a capture (one journal entry that debits
the captured amount and releases the whole hold, see `capture_sync`), or by a release
(void or expiry). Guarantees: `held_minor` never goes below zero nor above the balance
through a placement; the account row is locked the way the ledger locks it (PostgreSQL
`SELECT ... FOR UPDATE`; SQLite: the caller's write transaction is `BEGIN IMMEDIATE` on
the ledger's writer); the open holds are the `approved` card authorizations, and their
sum per account equals `held_minor` (checked by `banking ledger verify`).

Daily outgoing limit: a hold counts toward the account's outgoing of the UTC day it is
placed (`outgoing_minor`, the counter the ledger keeps for debits), so an authorization
that would take the day over the limit is declined `daily_limit_exceeded`. Its capture
does not count a second time: the captured amount replaces the hold in that day's count
when it is captured the same day, and is not counted again on a later day. A release
(void, expiry, card cancellation) on the day the hold was placed gives its amount back
to that day's count; a later release changes nothing (that day is over).

Everything here runs on a synchronous `Connection` inside the caller's transaction (the
ledger's writer), so a hold and the record that explains it commit together.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection

from banking.accounts.models import Account, AccountStatus
from banking.core.errors import NotFound
from banking.core.prepared import Prepared
from banking.ledger import internal
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind

ACCOUNT = cast(Table, Account.__table__)


@dataclass(frozen=True, slots=True)
class HeldAccount:
    """A customer account as read under its lock."""

    id: uuid.UUID
    status: str
    currency: str
    balance_minor: int
    held_minor: int
    daily_limit_minor: int | None
    outgoing_on: dt.date | None
    outgoing_minor: int
    stamped_at: dt.datetime | None
    # When the first open hold lapses (see `ledger/lapsed.py`).
    next_lapse_at: dt.datetime | None = None
    owner_id: uuid.UUID | None = None

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.held_minor

    def outgoing_on_day(self, today: dt.date) -> int:
        """Debits and holds counted on `today` (the counter restarts each UTC day)."""
        return self.outgoing_minor if self.outgoing_on == today else 0

    def counting_day(self, today: dt.date) -> dt.date:
        """The day a new hold counts on: `today`, or the counter's day if a movement
        stamped just after midnight already moved it on (never back to yesterday)."""
        return max(today, self.outgoing_on) if self.outgoing_on is not None else today


# The same columns the ledger locks, for one account, built once (see core/prepared.py).
_LOCK_ONE = Prepared(
    select(*ledger.LOCKED_COLUMNS)
    .where(ACCOUNT.c.id == bindparam("account_id"), ACCOUNT.c.is_internal.is_(False))
    .with_for_update()
)


def lock_account_sync(connection: Connection, account_id: uuid.UUID) -> HeldAccount:
    row = _LOCK_ONE.first(connection, {"account_id": account_id})
    if row is None:
        raise NotFound("No such account.")
    return HeldAccount(*row)


def check_sync(
    account: HeldAccount,
    *,
    amount_minor: int,
    currency: str,
    limits: ledger.Limits,
    today: dt.date,
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
    limit = account.daily_limit_minor or limits.daily_outgoing_limit_minor
    spent_today = account.outgoing_on_day(account.counting_day(today))
    if spent_today + amount_minor > limit:
        return ledger.DailyLimitExceeded(
            f"The daily outgoing limit is {limit} minor units; {spent_today} used today."
        )
    return None


def stamp_time(account: HeldAccount, now: dt.datetime) -> dt.datetime:
    """The time to stamp on a change of the locked account (see `ledger.stamp_time`)."""
    return ledger.stamp_time(now, account.stamped_at)


def place_sync(
    connection: Connection, account: HeldAccount, amount_minor: int, *, now: dt.datetime
) -> HeldAccount:
    """Hold `amount_minor` on an account locked by `lock_account_sync` (checked by
    `check_sync`) and count it in the outgoing of `now`'s day; `now` comes from
    `stamp_time`. Returns the account after the hold."""
    if amount_minor < 1 or amount_minor > account.available_minor:
        raise ledger.LedgerInvariantError("a hold must fit the available balance")
    if account.stamped_at is not None and now < account.stamped_at:
        raise ledger.LedgerInvariantError("a hold stamped before the account's last change")
    held = account.held_minor + amount_minor
    day = account.counting_day(now.date())
    outgoing = account.outgoing_on_day(day) + amount_minor
    _set(
        connection,
        account.id,
        held_minor=held,
        outgoing_on=day,
        outgoing_minor=outgoing,
        stamped_at=now,
    )
    return replace(
        account, held_minor=held, outgoing_on=day, outgoing_minor=outgoing, stamped_at=now
    )


def release_sync(
    connection: Connection,
    account_id: uuid.UUID,
    amount_minor: int,
    *,
    uncount_minor: int = 0,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """Release `amount_minor` of the account's holds (void, expiry, card cancellation),
    and take `uncount_minor` (the part placed `today`) off today's outgoing. With `now`,
    the release is stamped on the account (`stamp_time`) and that time is returned."""
    account = lock_account_sync(connection, account_id)
    if amount_minor < 0 or amount_minor > account.held_minor:
        raise ledger.LedgerInvariantError("releasing more than the account holds")
    if not 0 <= uncount_minor <= amount_minor:
        raise ledger.LedgerInvariantError("uncounting more than is released")
    values: dict[str, Any] = {"held_minor": account.held_minor - amount_minor}
    if uncount_minor and today is not None and account.outgoing_on == today:
        values["outgoing_minor"] = max(0, account.outgoing_minor - uncount_minor)
    stamped = None
    if now is not None:
        stamped = values["stamped_at"] = stamp_time(account, now)
    _set(connection, account_id, **values)
    return stamped


def _set(connection: Connection, account_id: uuid.UUID, **values: Any) -> None:
    updated = connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(values))
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
    placed_on: dt.date,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> ledger.Result:
    """Debit `amount_minor` (at most the hold) to the card-network settlement account and
    release the whole `held_minor` in the same journal entry (the ledger's own posting
    code). A decline (e.g. the account was frozen since) is recorded by the ledger and
    leaves the hold in place.

    The hold was counted in the outgoing of `placed_on`; the ledger counts every debit in
    today's. So before posting, today's count gives back what the ledger is about to add
    again: the whole hold if it was placed today (the capture replaces it, a partial
    capture frees the rest), else the captured amount (the day that counted it is over).
    """
    if amount_minor < 1 or amount_minor > held_minor:
        raise ledger.LedgerInvariantError("a capture must be within its hold")
    account = lock_account_sync(connection, account_id)
    # The request's time may be behind the account's last change (it waited for the lock,
    # or another host's clock): the entry and the day it counts on never go back.
    now = stamp_time(account, now)
    today = now.date()
    uncount = held_minor if placed_on == today else amount_minor
    # May be below zero until the ledger adds the capture back in the same transaction;
    # never so low that the count would end below zero.
    _set(
        connection,
        account_id,
        outgoing_on=today,
        outgoing_minor=max(account.outgoing_on_day(today) - uncount, -amount_minor),
    )
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
    result = ledger.post_sync(connection, movement, limits=limits, now=now)
    if result.outcome is None or not result.outcome.posted:
        # Declined: nothing was debited, so the hold stays counted as it was.
        _set(
            connection,
            account_id,
            outgoing_on=account.outgoing_on,
            outgoing_minor=account.outgoing_minor,
        )
    return result


def card_network_account_id(currency: str) -> uuid.UUID:
    return internal.internal_account_id(internal.Purpose.card_network, currency)
