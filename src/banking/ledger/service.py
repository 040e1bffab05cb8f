"""Ledger: the only code that moves money.

Guarantees: every posted journal entry's postings sum to zero per currency; entries are
never edited or deleted (a mistake is fixed by a reversing entry); a customer account's
cached balance equals the sum of its postings and the `balance_after_minor` of its last
posting, and never goes below zero; available balance = balance - held never goes below
zero through a debit. Internal settlement accounts are never locked and never have a
cached balance: theirs is the sum of their postings. A refused movement is recorded as a
declined entry with its reason, with the same commit as the refusal. Per customer account,
postings are stamped in order: a posting's time is taken under the account's lock and is
never earlier than the account's previous posting or hold (`stamp_time`). All of this is
checked by `banking ledger verify` (docs/ledger.md lists each rule beside its check).

One implementation of the rules, `post_sync`, runs on a synchronous SQLAlchemy
`Connection`: on PostgreSQL through `AsyncConnection.run_sync` (asyncpg), on SQLite on
the ledger's writer (see `ledger/writer.py`).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, cast

from sqlalchemy import Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from banking.accounts.models import Account, AccountRef, AccountStatus
from banking.audit import service as audit
from banking.core import idempotency
from banking.core.config import Settings
from banking.core.db import Database, utcnow
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from banking.core.idempotency import Claim, StoredResponse
from banking.core.prepared import Part, Prepared, Writes
from banking.events import outbox
from banking.ledger import internal, lapsed
from banking.ledger.invariants import LedgerInvariantError as LedgerInvariantError
from banking.ledger.models import EntryKind, EntryStatus, JournalEntry, Posting
from banking.ledger.writer import writer_for

ACCOUNT = cast(Table, Account.__table__)
ENTRY = cast(Table, JournalEntry.__table__)
POSTING = cast(Table, Posting.__table__)


# Declines: each is recorded as a declined entry and answered with its problem+json.
class Declined(DomainError):
    reason: ClassVar[str] = "declined"


class InsufficientFunds(Declined, Conflict):
    code = reason = "insufficient_funds"
    title = "The source account's available balance is lower than the amount."


class AccountFrozen(Declined, Conflict):
    code = reason = "account_frozen"
    title = "The source account is frozen: no money can leave it."


class AccountClosed(Declined, Conflict):
    code = reason = "account_closed"
    title = "An account in this movement is closed."


class CurrencyMismatch(Declined, InvalidRequest):
    code = reason = "currency_mismatch"
    title = "Both accounts of a movement must hold the same currency."


class AmountTooLarge(Declined, InvalidRequest):
    code = reason = "amount_too_large"
    title = "The amount is above the maximum allowed for one movement."


class BalanceLimitExceeded(Declined, InvalidRequest):
    code = reason = "balance_limit_exceeded"
    title = "The movement would take the target account above the maximum balance."


class DailyLimitExceeded(Declined, Conflict):
    code = reason = "daily_limit_exceeded"
    title = "The movement would exceed the source account's daily outgoing limit."


class SameAccount(Declined, InvalidRequest):
    code = reason = "same_account"
    title = "The source and target accounts must differ."


class NewPayeeLimit(Declined, Conflict):
    code = reason = "new_payee_limit"
    title = "The payee was added too recently for a transfer of this amount."


class AlreadyReversed(Declined, Conflict):
    code = reason = "already_reversed"
    title = "The reversals of this entry would add up to more than the entry."


class DeclineReason(StrEnum):
    new_payee_limit = "new_payee_limit"
    insufficient_funds = "insufficient_funds"
    account_frozen = "account_frozen"
    account_closed = "account_closed"
    currency_mismatch = "currency_mismatch"
    amount_too_large = "amount_too_large"
    balance_limit_exceeded = "balance_limit_exceeded"
    daily_limit_exceeded = "daily_limit_exceeded"
    same_account = "same_account"
    already_reversed = "already_reversed"


DECLINES: dict[str, type[Declined]] = {
    cls.reason: cls
    for cls in (
        InsufficientFunds,
        AccountFrozen,
        AccountClosed,
        CurrencyMismatch,
        AmountTooLarge,
        BalanceLimitExceeded,
        DailyLimitExceeded,
        SameAccount,
        NewPayeeLimit,
        AlreadyReversed,
    )
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_movement_minor: int
    max_balance_minor: int
    daily_outgoing_limit_minor: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_movement_minor=settings.max_movement_minor,
            max_balance_minor=settings.max_balance_minor,
            daily_outgoing_limit_minor=settings.daily_outgoing_limit_minor,
        )


@dataclass(frozen=True, slots=True)
class Movement:
    """A request to move `amount_minor` from `source` to `target` as one journal entry.

    `origin_account_id` is the customer account the request was made on (its history
    shows the attempt if it is declined). `release_hold_minor` lets a card capture turn
    a hold on the source into the debit in the same entry.
    """

    kind: EntryKind
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID
    origin_account_id: uuid.UUID
    amount_minor: int
    currency: str
    description: str | None = None
    initiator_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    release_hold_minor: int = 0
    client: ClientInfo | None = None
    locked: Mapping[uuid.UUID, LockedAccount] | None = field(default=None, compare=False)
    """The customer accounts of the movement, when its resolve already locked them (see
    `lock_transfer_accounts_sync`); None lets the ledger lock them."""
    decline: Declined | None = field(default=None, compare=False)
    """A refusal the caller's own rules decided (e.g. the new-payee limit): the ledger
    records it as a declined entry, like its own declines, after checking the accounts."""
    reverses_entry_id: uuid.UUID | None = None
    """A reversal or refund: the posted entry it gives back (part of), in the opposite
    direction. See `ledger.reversals`."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a movement: posted (with balances after) or declined."""

    entry_id: uuid.UUID
    movement: Movement
    status: EntryStatus
    created_at: dt.datetime
    decline: Declined | None = None
    # Customer account id -> its balance after the entry (posted entries only).
    balances_after: dict[uuid.UUID, int] = field(default_factory=dict)

    @property
    def posted(self) -> bool:
        return self.status is EntryStatus.posted


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome | None
    """None when the answer is a replay of an earlier request with the same key."""
    response: StoredResponse | None
    replayed: bool = False


Render = Callable[[Outcome], StoredResponse]


class _KeyTaken(Exception):
    """Raised inside the transaction to roll it back: the key was stored meanwhile."""


@dataclass(slots=True)
class LockedAccount:
    """A customer account's state, read under its row lock."""

    id: uuid.UUID
    status: str
    currency: str
    balance_minor: int
    held_minor: int
    daily_limit_minor: int | None
    outgoing_on: dt.date | None
    outgoing_minor: int
    stamped_at: dt.datetime | None
    # When the account's first open card hold lapses (None: no open hold). Read with the
    # lock, so finding a lapsed hold costs no extra statement (see `ledger/lapsed.py`).
    next_lapse_at: dt.datetime | None = None
    owner_id: uuid.UUID | None = None

    def has_lapsed_holds(self, now: dt.datetime) -> bool:
        return self.next_lapse_at is not None and self.next_lapse_at <= now


def stamp_time(now: dt.datetime, *accounts: dt.datetime | None) -> dt.datetime:
    """The time to stamp on a change of locked accounts: `now`, or the latest time already
    stamped on one of them if the clock is behind it (a request that waited for the lock,
    a clock step, another host's clock). Per account, times then follow the order of
    changes, which statements and the daily outgoing counter rely on."""
    latest = max((stamped for stamped in accounts if stamped is not None), default=None)
    return now if latest is None or now >= latest else latest


# Statements are built once and run on the DBAPI cursor (see `core/prepared.py`): building,
# cache-keying and executing a statement through `Connection.execute` costs more CPU than
# the database spends on it (the ledger's hot path is CPU-bound).
LOCKED_COLUMNS = (
    ACCOUNT.c.id,
    ACCOUNT.c.status,
    ACCOUNT.c.currency,
    ACCOUNT.c.balance_minor,
    ACCOUNT.c.held_minor,
    ACCOUNT.c.daily_outgoing_limit_minor,
    ACCOUNT.c.outgoing_on,
    ACCOUNT.c.outgoing_minor,
    ACCOUNT.c.stamped_at,
    lapsed.next_lapse_at(ACCOUNT.c.id),
    ACCOUNT.c.owner_id,
)


def _lock_accounts_statement(count: int) -> Prepared:
    ids = [bindparam(f"id_{index}", type_=ACCOUNT.c.id.type) for index in range(count)]
    return Prepared(
        select(*LOCKED_COLUMNS)
        .where(ACCOUNT.c.id.in_(ids), ACCOUNT.c.is_internal.is_(False))
        .order_by(ACCOUNT.c.id)
        .with_for_update()
    )


# A movement touches at most two customer accounts.
_LOCK_ACCOUNTS = {count: _lock_accounts_statement(count) for count in (1, 2)}


_ENTRY_COLUMNS = (
    "id",
    "kind",
    "status",
    "source_account_id",
    "target_account_id",
    "origin_account_id",
    "amount_minor",
    "currency",
    "description",
    "initiator_id",
    "idempotency_key",
    "decline_reason",
    "created_at",
    "reversed_entry_id",
)
_INSERT_ENTRY = insert(ENTRY).values(
    {name: bindparam(name, type_=ENTRY.c[name].type) for name in _ENTRY_COLUMNS}
)
_POSTING_COLUMNS = (
    "entry_id",
    "account_id",
    "amount_minor",
    "currency",
    "balance_after_minor",
    "created_at",
)
# Both legs in one multi-row INSERT.
_INSERT_TWO_POSTINGS = insert(POSTING).values(
    [
        {name: bindparam(f"{name}_{leg}", type_=POSTING.c[name].type) for name in _POSTING_COLUMNS}
        for leg in (0, 1)
    ]
)
_BALANCE_COLUMNS = ("balance_minor", "held_minor", "outgoing_minor", "outgoing_on", "stamped_at")


def _update_accounts_statement(count: int) -> Any:
    """UPDATE of `count` accounts in one statement: a CASE on the id for each column."""
    ids = [bindparam(f"id_{index}", type_=ACCOUNT.c.id.type) for index in range(count)]
    values = {
        name: case(
            *(
                (
                    ACCOUNT.c.id == ids[index],
                    bindparam(f"{name}_{index}", type_=ACCOUNT.c[name].type),
                )
                for index in range(count)
            ),
            else_=ACCOUNT.c[name],
        )
        for name in _BALANCE_COLUMNS
    }
    return update(ACCOUNT).where(ACCOUNT.c.id.in_(ids)).values(values)


_UPDATE_ACCOUNTS = {count: _update_accounts_statement(count) for count in (1, 2)}


@functools.cache
def _writes(*, store: bool, posted: bool, accounts: int, events: int = 0) -> Writes:
    """All the writes of one movement: on PostgreSQL one statement (one round trip).

    In order: the idempotency record (with a claim), the entry, then for a posted entry
    its postings and the `accounts` customer accounts' balances, then the audit row and
    the movement's `events` outbox rows (one multi-row INSERT).
    """
    parts: list[Part] = [(idempotency.STORE, idempotency.STORE_RETURNING)] if store else []
    parts.append(_INSERT_ENTRY)
    if posted:
        parts.append(_INSERT_TWO_POSTINGS)
        if accounts:
            parts.append(_UPDATE_ACCOUNTS[accounts])
    parts.append(audit.INSERT_EVENT)
    if events:
        parts.append(outbox.INSERT_EVENTS[events])
    return Writes(*parts)


def _lock_customer_accounts(
    connection: Connection, account_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LockedAccount]:
    # Lock in id order, in one statement, so two opposite transfers cannot deadlock.
    if not account_ids:
        return {}
    ids = sorted(set(account_ids))
    rows = _LOCK_ACCOUNTS[len(ids)].all(
        connection, {f"id_{index}": account_id for index, account_id in enumerate(ids)}
    )
    return {row[0]: LockedAccount(*row) for row in rows}


def _transfer_lock_statement(*, by_number: bool) -> Prepared:
    owner = bindparam("owner_id", type_=ACCOUNT.c.owner_id.type)
    source = bindparam("source_id", type_=ACCOUNT.c.id.type)
    if by_number:
        # The caller's source, and any customer account by number.
        named = or_(
            and_(ACCOUNT.c.id == source, ACCOUNT.c.owner_id == owner),
            ACCOUNT.c.number == bindparam("number"),
        )
    else:
        # The caller's source and target: other members' ids are unknown ids.
        target = bindparam("target_id", type_=ACCOUNT.c.id.type)
        named = and_(ACCOUNT.c.owner_id == owner, ACCOUNT.c.id.in_([source, target]))
    return Prepared(
        select(*LOCKED_COLUMNS, ACCOUNT.c.number)
        .where(named, ACCOUNT.c.is_internal.is_(False))
        .order_by(ACCOUNT.c.id)
        .with_for_update()
    )


_LOCK_TRANSFER = {
    by_number: _transfer_lock_statement(by_number=by_number) for by_number in (False, True)
}


def lock_transfer_accounts_sync(
    connection: Connection,
    *,
    owner_id: uuid.UUID,
    source_id: uuid.UUID,
    target_id: uuid.UUID | None = None,
    target_number: str | None = None,
) -> tuple[AccountRef, AccountRef, dict[uuid.UUID, LockedAccount]]:
    """A transfer's two accounts, read and locked (in id order) in one statement.

    For a `resolve`: the source must be the caller's; the target is another of the
    caller's accounts by id, or any customer account by number. Anything else is
    `NotFound`, the source's error first. Pass the locked accounts as `Movement.locked`.
    """
    if target_id is not None:
        rows = _LOCK_TRANSFER[False].all(
            connection, {"owner_id": owner_id, "source_id": source_id, "target_id": target_id}
        )
    else:
        assert target_number is not None
        rows = _LOCK_TRANSFER[True].all(
            connection, {"owner_id": owner_id, "source_id": source_id, "number": target_number}
        )
    width = len(LOCKED_COLUMNS)
    # The owner is the last locked column; the number comes after them.
    refs = [AccountRef(row[0], row[width - 1], row[width], row[2]) for row in rows]
    source = next((ref for ref in refs if ref.id == source_id and ref.owner_id == owner_id), None)
    if source is None:
        raise NotFound("No such account.")
    if target_id is not None:
        target = next((ref for ref in refs if ref.id == target_id), None)
        if target is None:
            raise NotFound("No such account.")
    else:
        target = next((ref for ref in refs if ref.number == target_number), None)
        if target is None:
            raise NotFound("No account has this number.")
    return source, target, {row[0]: LockedAccount(*row[:width]) for row in rows}


def lock_many_sync(
    connection: Connection,
    *,
    owner_id: uuid.UUID,
    account_ids: Sequence[uuid.UUID] = (),
    numbers: Sequence[str] = (),
) -> int:
    """Lock every customer account a multi-movement job may touch (the owner's by id, any
    by number), in id order, in one statement, before its movements lock them again one by
    one: two jobs (or a job and single transfers) locking overlapping accounts then take
    the locks in the same order and cannot deadlock. Returns how many rows it locked."""
    ids, named = sorted(set(account_ids)), sorted(set(numbers))
    if not ids and not named:
        return 0
    rows = connection.execute(
        select(ACCOUNT.c.id)
        .where(
            or_(
                and_(ACCOUNT.c.id.in_(ids), ACCOUNT.c.owner_id == owner_id),
                ACCOUNT.c.number.in_(named),
            ),
            ACCOUNT.c.is_internal.is_(False),
        )
        .order_by(ACCOUNT.c.id)
        .with_for_update()
    ).all()
    return len(rows)


def lock_own_account_sync(
    connection: Connection, *, owner_id: uuid.UUID, account_id: uuid.UUID
) -> tuple[AccountRef, dict[uuid.UUID, LockedAccount]]:
    """The caller's account, read and locked in one statement (a deposit or withdrawal's
    `resolve`); anyone else's is `NotFound`. Pass the locked account as `Movement.locked`."""
    account, _same, locked = lock_transfer_accounts_sync(
        connection, owner_id=owner_id, source_id=account_id, target_id=account_id
    )
    return account, locked


def _decide(
    connection: Connection,
    movement: Movement,
    limits: Limits,
    clock: Callable[[], dt.datetime],
) -> tuple[Declined | None, dict[uuid.UUID, LockedAccount], dt.datetime]:
    """Lock the customer accounts and apply the rules. Writes nothing.

    Returns the decision, the locked accounts and the entry's time, read from `clock` only
    once the accounts are locked and never earlier than a time already stamped on one of
    them (`stamp_time`): on every account the postings' times then follow their order,
    which statements rely on (checked by `banking ledger verify`, step `posting_time_order`)."""
    if movement.amount_minor < 1 or movement.release_hold_minor < 0:
        raise LedgerInvariantError("movement amounts must be positive")
    if movement.source_account_id == movement.target_account_id:
        return SameAccount(), {}, clock()
    if movement.amount_minor > limits.max_movement_minor:
        return (
            AmountTooLarge(
                f"The maximum for one movement is {limits.max_movement_minor} minor units."
            ),
            {},
            clock(),
        )
    sides = (movement.source_account_id, movement.target_account_id)
    customer_ids = [account_id for account_id in sides if not internal.is_internal(account_id)]
    if movement.locked is None:
        locked = _lock_customer_accounts(connection, customer_ids)
    else:
        locked = {
            account_id: movement.locked[account_id]
            for account_id in customer_ids
            if account_id in movement.locked
        }
    now = stamp_time(clock(), *(account.stamped_at for account in locked.values()))
    if any(account.has_lapsed_holds(now) for account in locked.values()):
        # Lapsed card holds are released before the rules look at what is available.
        lapsed.release_on_accounts_sync(connection, sorted(locked), now=now)
        locked = _lock_customer_accounts(connection, list(locked))
        now = stamp_time(now, *(account.stamped_at for account in locked.values()))
    today = now.date()
    for account_id in sides:
        if internal.is_internal(account_id):
            if internal.INTERNAL_ACCOUNTS[account_id][1] != movement.currency:
                return CurrencyMismatch(), locked, now
        elif account_id not in locked:
            raise NotFound("No such account.")
    for account in locked.values():
        if account.status == AccountStatus.closed.value:
            return AccountClosed(), locked, now
    source = locked.get(movement.source_account_id)
    target = locked.get(movement.target_account_id)
    reversal = movement.reverses_entry_id is not None
    # A reversal is the bank correcting its own books: a freeze stops the member, not
    # the correction, and the daily limit is the member's (see docs/ledger.md).
    if source is not None and source.status == AccountStatus.frozen.value and not reversal:
        return AccountFrozen(), locked, now
    for account in locked.values():
        if account.currency != movement.currency:
            return CurrencyMismatch(), locked, now
    if reversal:
        # Every reversal of an entry locks that entry's customer accounts, so the sum read
        # here (a fresh snapshot after the locks, on PostgreSQL's READ COMMITTED; the
        # single writer on SQLite) cannot miss one committed meanwhile.
        assert movement.reverses_entry_id is not None
        reversed_minor = reversed_sum_sync(connection, movement.reverses_entry_id)
        original_minor = connection.execute(
            select(ENTRY.c.amount_minor).where(ENTRY.c.id == movement.reverses_entry_id)
        ).scalar_one()
        if reversed_minor + movement.amount_minor > original_minor:
            return (
                AlreadyReversed(
                    f"{reversed_minor} of {original_minor} minor units are already reversed."
                ),
                locked,
                now,
            )
    if movement.decline is not None:
        return movement.decline, locked, now
    if source is not None:
        if movement.release_hold_minor > source.held_minor:
            raise LedgerInvariantError("releasing more than the account holds")
        available = source.balance_minor - (source.held_minor - movement.release_hold_minor)
        if movement.amount_minor > available:
            return InsufficientFunds(), locked, now
        limit = source.daily_limit_minor or limits.daily_outgoing_limit_minor
        spent_today = source.outgoing_minor if source.outgoing_on == today else 0
        if not reversal and spent_today + movement.amount_minor > limit:
            return (
                DailyLimitExceeded(
                    f"The daily outgoing limit is {limit} minor units; {spent_today} used today."
                ),
                locked,
                now,
            )
    if target is not None and target.balance_minor + movement.amount_minor > (
        limits.max_balance_minor
    ):
        return BalanceLimitExceeded(), locked, now
    return None, locked, now


def reversed_sum_sync(connection: Connection, entry_id: uuid.UUID) -> int:
    """What the posted reversals and refunds of `entry_id` add up to."""
    total = connection.execute(
        select(func.coalesce(func.sum(ENTRY.c.amount_minor), 0)).where(
            ENTRY.c.reversed_entry_id == entry_id,
            ENTRY.c.status == EntryStatus.posted.value,
        )
    ).scalar_one()
    return int(total)


def _entry_values(
    movement: Movement,
    entry_id: uuid.UUID,
    now: dt.datetime,
    status: EntryStatus,
    decline: Declined | None,
) -> dict[str, Any]:
    return {
        "id": entry_id,
        "kind": movement.kind.value,
        "status": status.value,
        "source_account_id": movement.source_account_id,
        "target_account_id": movement.target_account_id,
        "origin_account_id": movement.origin_account_id,
        "amount_minor": movement.amount_minor,
        "currency": movement.currency,
        "description": movement.description,
        "initiator_id": movement.initiator_id,
        "idempotency_key": movement.idempotency_key,
        "decline_reason": decline.reason if decline else None,
        "created_at": now,
        "reversed_entry_id": movement.reverses_entry_id,
    }


def _posting_params(
    movement: Movement,
    locked: dict[uuid.UUID, LockedAccount],
    entry_id: uuid.UUID,
    now: dt.datetime,
) -> tuple[dict[str, Any], dict[uuid.UUID, int]]:
    """The postings' parameters, and each customer account's balance after them."""
    legs = (
        (movement.source_account_id, -movement.amount_minor),
        (movement.target_account_id, movement.amount_minor),
    )
    balances_after: dict[uuid.UUID, int] = {}
    params: dict[str, Any] = {}
    for leg, (account_id, amount_minor) in enumerate(legs):
        account = locked.get(account_id)
        balance_after = None
        if account is not None:
            balance_after = account.balance_minor + amount_minor
            balances_after[account_id] = balance_after
        params[f"entry_id_{leg}"] = entry_id
        params[f"account_id_{leg}"] = account_id
        params[f"amount_minor_{leg}"] = amount_minor
        params[f"currency_{leg}"] = movement.currency
        params[f"balance_after_minor_{leg}"] = balance_after
        params[f"created_at_{leg}"] = now
    return params, balances_after


def _balance_params(
    movement: Movement,
    locked: dict[uuid.UUID, LockedAccount],
    balances_after: dict[uuid.UUID, int],
    now: dt.datetime,
) -> dict[str, Any]:
    """The parameters of one UPDATE for every touched customer account (values computed
    under the lock)."""
    held: dict[uuid.UUID, int] = {}
    outgoing: dict[uuid.UUID, int] = {}
    outgoing_on: dict[uuid.UUID, dt.date | None] = {}
    today = now.date()
    for account_id, account in locked.items():
        held[account_id] = account.held_minor
        outgoing[account_id] = account.outgoing_minor
        outgoing_on[account_id] = account.outgoing_on
    source = locked.get(movement.source_account_id)
    if source is not None:
        held[source.id] = source.held_minor - movement.release_hold_minor
        if movement.reverses_entry_id is None:
            # A reversal is not the member's spending: it leaves the daily count alone.
            spent = source.outgoing_minor if source.outgoing_on == today else 0
            outgoing[source.id] = spent + movement.amount_minor
            outgoing_on[source.id] = today
    params: dict[str, Any] = {}
    for index, account_id in enumerate(sorted(locked)):
        params[f"id_{index}"] = account_id
        params[f"balance_minor_{index}"] = balances_after[account_id]
        params[f"held_minor_{index}"] = held[account_id]
        params[f"outgoing_minor_{index}"] = outgoing[account_id]
        params[f"outgoing_on_{index}"] = outgoing_on[account_id]
        params[f"stamped_at_{index}"] = now
    return params


Resolve = Callable[[Connection], tuple[Movement, Render | None]]


def post_sync(
    connection: Connection,
    movement: Movement,
    *,
    limits: Limits,
    now: dt.datetime | None = None,
    claim: Claim | None = None,
    render: Render | None = None,
    idempotency_ttl_s: int = 24 * 3600,
) -> Result:
    """Post `movement` as one balanced entry, or record why it is declined.

    Runs inside the caller's transaction; everything it writes (entry, postings, cached
    balances, audit row, idempotency record) commits or rolls back together.
    """
    return execute_sync(
        connection,
        lambda _connection: (movement, render),
        limits=limits,
        now=now,
        claim=claim,
        idempotency_ttl_s=idempotency_ttl_s,
    )


def execute_sync(
    connection: Connection,
    resolve: Resolve,
    *,
    limits: Limits,
    now: dt.datetime | None = None,
    claim: Claim | None = None,
    idempotency_ttl_s: int = 24 * 3600,
    clock: Callable[[], dt.datetime] = utcnow,
) -> Result:
    """One whole money request inside one transaction.

    `resolve(connection)` does the caller's reads (ownership, the payee by number) and
    returns the movement and how to render the answer; it may raise (e.g. `NotFound`).
    With a `claim`, an answer already stored under the key is returned instead of
    posting; otherwise the rendered answer is stored with the movement. If the key turns
    out to be taken meanwhile, raises `_KeyTaken` so that the caller rolls back and replays.
    """
    explicit_now = now
    now = now or clock()
    # The key's lock and its stored record come first (one statement); the replay (or
    # refusal of a different request) is answered after `resolve`, whose errors win.
    stored = idempotency.claim_sync(connection, claim, now=now) if claim is not None else None
    movement, render = resolve(connection)
    if stored is not None:
        assert claim is not None
        return Result(outcome=None, response=idempotency.replay(stored, claim), replayed=True)
    decline, locked, now = _decide(
        connection, movement, limits, (lambda: explicit_now) if explicit_now else clock
    )
    entry_id = uuid.uuid4()
    status = EntryStatus.declined if decline else EntryStatus.posted
    # The balances after are known before writing: they were computed under the locks.
    balances_after = (
        {}
        if decline
        else {
            account_id: account.balance_minor
            + (
                movement.amount_minor
                if account_id == movement.target_account_id
                else -movement.amount_minor
            )
            for account_id, account in locked.items()
        }
    )
    outcome = Outcome(
        entry_id=entry_id,
        movement=movement,
        status=status,
        created_at=now,
        decline=decline,
        balances_after=balances_after,
    )
    response = render(outcome) if render else None
    params = _entry_values(movement, entry_id, now, status, decline)
    if claim is not None:
        if response is None:
            raise LedgerInvariantError("an idempotent movement needs a rendered response")
        params.update(idempotency.store_params(claim, response, now=now, ttl_s=idempotency_ttl_s))
    if decline is None:
        postings, written = _posting_params(movement, locked, entry_id, now)
        if written != balances_after:
            raise LedgerInvariantError("balances after do not match the plan")
        params.update(postings)
        if locked:
            params.update(_balance_params(movement, locked, balances_after, now))
    params.update(
        audit.event_values(
            event_type=f"ledger.{movement.kind.value}",
            outcome="success" if decline is None else "declined",
            actor_id=movement.initiator_id,
            target_type="journal_entry",
            target_id=entry_id,
            client=movement.client,
            occurred_at=now,
            details={
                "amount_minor": movement.amount_minor,
                "currency": movement.currency,
                "source_account_id": movement.source_account_id,
                "target_account_id": movement.target_account_id,
                **({"reason": decline.reason} if decline else {}),
                **(
                    {"reversed_entry_id": movement.reverses_entry_id}
                    if movement.reverses_entry_id
                    else {}
                ),
            },
        )
    )
    events = movement_events(outcome, locked)
    if events:
        params.update(outbox.params(events))
    writes = _writes(
        store=claim is not None,
        posted=decline is None,
        accounts=0 if decline else len(locked),
        events=len(events),
    )
    counts = writes.run(connection, params)
    if claim is not None and counts[0] != 1:
        # The key was stored meanwhile: roll everything back and replay that answer.
        raise _KeyTaken()
    if events and counts[-1] != len(events):
        raise LedgerInvariantError("a movement's events were not written")
    if decline is None and locked and counts[-2 - bool(events)] != len(locked):
        raise LedgerInvariantError("a locked account was not updated")
    return Result(outcome=outcome, response=response)


# The event type prefix of each kind of entry; a card capture's event is written by the
# card service in the same transaction (`card.authorization.captured`).
EVENT_PREFIXES = {
    EntryKind.deposit: "deposit",
    EntryKind.withdrawal: "withdrawal",
    EntryKind.transfer: "transfer",
    EntryKind.reversal: "reversal",
    EntryKind.card_refund: "card_refund",
    EntryKind.interest: "interest",
}


def movement_events(
    outcome: Outcome, locked: Mapping[uuid.UUID, LockedAccount]
) -> list[dict[str, Any]]:
    """The outbox rows of a movement (docs/events.md): `<kind>.posted` or `<kind>.declined`
    for the owner of the account the request was made on, shaped like the API's answer;
    and for a transfer posted to someone else's account, `transfer.received` for them.
    Values are formatted here (strings, integers, None): this runs on the hot path."""
    movement = outcome.movement
    prefix = EVENT_PREFIXES.get(movement.kind)
    if prefix is None:
        return []
    origin = locked.get(movement.origin_account_id)
    owner_id = origin.owner_id if origin is not None else movement.initiator_id
    entry_id = str(outcome.entry_id)
    status = outcome.status.value
    created_at = outbox.timestamp(outcome.created_at)
    decline_reason = outcome.decline.reason if outcome.decline else None
    balances_after = outcome.balances_after
    if movement.kind is EntryKind.transfer:
        target = locked.get(movement.target_account_id)
        own_target = target is not None and target.owner_id == owner_id
        data: dict[str, str | int | None] = {
            "id": entry_id,
            "kind": movement.kind.value,
            "status": status,
            "source_account_id": str(movement.source_account_id),
            "target_account_id": str(movement.target_account_id) if own_target else None,
            "amount": movement.amount_minor,
            "balance_after": balances_after.get(movement.source_account_id),
            "currency": movement.currency,
            "description": movement.description,
            "decline_reason": decline_reason,
            "created_at": created_at,
        }
    else:
        credit = movement.target_account_id == movement.origin_account_id
        data = {
            "id": entry_id,
            "kind": movement.kind.value,
            "status": status,
            "account_id": str(movement.origin_account_id),
            "amount": movement.amount_minor if credit else -movement.amount_minor,
            "balance_after": balances_after.get(movement.origin_account_id),
            "currency": movement.currency,
            "description": movement.description,
            "decline_reason": decline_reason,
            "created_at": created_at,
        }
    rows = [
        outbox.ledger_row(
            type=f"{prefix}.{status}",
            owner_id=owner_id,
            subject_id=outcome.entry_id,
            account_id=movement.origin_account_id,
            data=data,
            created_at=outcome.created_at,
        )
    ]
    if outcome.posted and movement.kind is EntryKind.transfer:
        target = locked.get(movement.target_account_id)
        if target is not None and target.owner_id != owner_id:
            rows.append(
                outbox.ledger_row(
                    type="transfer.received",
                    owner_id=target.owner_id,
                    subject_id=outcome.entry_id,
                    account_id=target.id,
                    data={
                        "id": entry_id,
                        "kind": movement.kind.value,
                        "status": status,
                        "account_id": str(target.id),
                        "amount": movement.amount_minor,
                        "balance_after": balances_after.get(target.id),
                        "currency": movement.currency,
                        "description": movement.description,
                        "decline_reason": None,
                        "created_at": created_at,
                    },
                    created_at=outcome.created_at,
                )
            )
    return rows


async def post(
    db: Database,
    movement: Movement,
    *,
    claim: Claim | None = None,
    render: Render | None = None,
    now: dt.datetime | None = None,
) -> Result:
    """Post a movement in its own transaction (see `post_sync`)."""
    return await execute(db, lambda _connection: (movement, render), claim=claim, now=now)


async def execute(
    db: Database,
    resolve: Resolve,
    *,
    claim: Claim | None = None,
    now: dt.datetime | None = None,
) -> Result:
    """Run `execute_sync` as one transaction on the ledger's writer, replaying on a taken key.

    Must not be called inside `write_transaction`: the ledger commits on its own.
    """
    settings = db.settings
    limits = Limits.from_settings(settings)

    def work(connection: Connection) -> Result:
        return execute_sync(
            connection,
            resolve,
            limits=limits,
            now=now,
            claim=claim,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            clock=db.clock,
        )

    writer = writer_for(db)
    try:
        return await writer.run(work)
    except _KeyTaken:
        if claim is None:  # pragma: no cover - only raised with a claim
            raise
        stored = await writer.read(lambda connection: idempotency.lookup_sync(connection, claim))
        if stored is None:  # pragma: no cover - the record was there a moment ago
            raise idempotency.IdempotencyKeyInFlight() from None
        return Result(outcome=None, response=stored, replayed=True)


def cash_account_id(currency: str) -> uuid.UUID:
    return internal.internal_account_id(internal.Purpose.cash, currency)
