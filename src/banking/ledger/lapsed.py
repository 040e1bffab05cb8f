"""Lapsed card holds: one rule for reads and for the write path.

An approved card authorization holds its amount until `expires_at`. From that instant the
hold has lapsed: it no longer counts, whether or not anything has released it yet.

- Reads never write. They compute what is still held as `held_minor - lapsed_minor(...)`
  (the amounts of the account's approved holds whose `expires_at` has passed at the read's
  time), and show such an authorization as `expired`, settled at its `expires_at`: what a
  person sees does not depend on whether the sweeper has run.
- The write path releases lapsed holds for real (`release_sync`): the periodic sweeper in
  each API process (`banking.cards.sweeper`), `banking holds expire`, and any movement or
  hold that locks an account first (the ledger's lock statement reads `lapsed_minor` with
  the account, so the check costs no extra round trip; see `ledger.service._decide` and
  `holds.lock_account_sync`). A release stores the same facts the reads showed: status
  `expired`, `settled_at = expires_at`.

So a debit decided under the account's lock sees the same available balance a read
showed. One exception keeps the lock order safe on PostgreSQL: a lapsed authorization
that another transaction holds at that instant (a capture or void of it, which locks the
authorization before the account) is skipped (`SKIP LOCKED`) by a movement that already
holds the account; the debit is then decided with that hold still counted, never with
less held than is stored. Checked by `banking ledger verify` (`held_matches_holds`,
`hold_state`) and tests/integration/test_reads_never_write.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    Uuid,
    and_,
    case,
    column,
    func,
    select,
    table,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.engine import Connection

from banking.accounts.models import Account
from banking.audit import service as audit
from banking.core.deps import ClientInfo
from banking.events import outbox
from banking.ledger.invariants import LedgerInvariantError
from banking.ledger.models import AuthorizationStatus, CardAuthorization

ACCOUNT = cast(Table, Account.__table__)
AUTHORIZATION = cast(Table, CardAuthorization.__table__)
# The ledger knows nothing of the cards domain but the three columns of the `card` table
# that an expired hold's event carries (its shape is cards/schemas.py `AuthorizationOut`):
# described here as data, not imported, so the ledger stays below the cards domain.
CARD = table("card", column("id", Uuid()), column("last4", String(4)), column("owner_id", Uuid()))
APPROVED = AuthorizationStatus.approved.value
EXPIRED = AuthorizationStatus.expired.value
RELEASE_BATCH = 500


def lapsed_minor(account_id: Any, now: Any) -> Any:
    """A scalar subquery: the sum of the account's approved holds lapsed by `now` (0 if
    none); on the index (account_id, status)."""
    return (
        select(sa_cast(func.coalesce(func.sum(AUTHORIZATION.c.amount_minor), 0), BigInteger))
        .where(
            AUTHORIZATION.c.account_id == account_id,
            AUTHORIZATION.c.status == APPROVED,
            AUTHORIZATION.c.expires_at <= now,
        )
        .scalar_subquery()
    )


def next_lapse_at(account_id: ColumnElement[Any]) -> Any:
    """A scalar subquery: when the account's first open (approved) hold lapses, or NULL;
    needs no time parameter, so a lock statement can carry it."""
    return (
        select(func.min(AUTHORIZATION.c.expires_at))
        .where(AUTHORIZATION.c.account_id == account_id, AUTHORIZATION.c.status == APPROVED)
        .scalar_subquery()
        .label("next_lapse_at")
    )


def lapsed(now: ColumnElement[Any]) -> ColumnElement[bool]:
    """True for an authorization row whose approved hold has lapsed by `now`."""
    return and_(AUTHORIZATION.c.status == APPROVED, AUTHORIZATION.c.expires_at <= now)


def shown_status(now: ColumnElement[Any]) -> Any:
    """The authorization's status as a read shows it at `now`."""
    return case((lapsed(now), EXPIRED), else_=AUTHORIZATION.c.status)


def shown_settled_at(now: ColumnElement[Any]) -> Any:
    """The authorization's `settled_at` as a read shows it at `now`."""
    return case((lapsed(now), AUTHORIZATION.c.expires_at), else_=AUTHORIZATION.c.settled_at)


def release_sync(
    connection: Connection,
    *,
    now: dt.datetime,
    where: ColumnElement[bool],
    client: ClientInfo | None = None,
    limit: int = RELEASE_BATCH,
    skip_locked: bool = False,
) -> int:
    """Release the lapsed holds matching `where` (at most `limit`) as `expired`, with
    their accounts' `held_minor`, in the caller's transaction. Returns how many.

    Lock order: the authorizations, then their accounts in id order (as captures, voids
    and card cancellations lock). `skip_locked` is for a caller that already holds an
    account's lock: waiting there for an authorization could deadlock with a capture.
    """
    rows = connection.execute(
        select(
            AUTHORIZATION.c.id,
            AUTHORIZATION.c.account_id,
            AUTHORIZATION.c.card_id,
            AUTHORIZATION.c.amount_minor,
            AUTHORIZATION.c.created_at,
            AUTHORIZATION.c.expires_at,
        )
        .where(where, AUTHORIZATION.c.status == APPROVED, AUTHORIZATION.c.expires_at <= now)
        .order_by(AUTHORIZATION.c.id)
        .limit(limit)
        .with_for_update(skip_locked=skip_locked)
    ).all()
    if not rows:
        return 0
    today = now.date()
    per_account: dict[uuid.UUID, int] = {}
    placed_today: dict[uuid.UUID, int] = {}
    for row in rows:
        per_account[row.account_id] = per_account.get(row.account_id, 0) + row.amount_minor
        if row.created_at.date() == today:
            placed_today[row.account_id] = placed_today.get(row.account_id, 0) + row.amount_minor
    for account_id in sorted(per_account):
        _release_on_account(
            connection,
            account_id,
            per_account[account_id],
            uncount_minor=placed_today.get(account_id, 0),
            today=today,
            now=now,
        )
    for row in rows:
        connection.execute(
            update(AUTHORIZATION)
            .where(AUTHORIZATION.c.id == row.id)
            .values(status=EXPIRED, settled_at=row.expires_at)
        )
        audit.record_sync(
            connection,
            event_type="card.hold_expired",
            target_type="card_authorization",
            target_id=row.id,
            client=client,
            occurred_at=now,
            details={"card_id": row.card_id, "released_minor": row.amount_minor},
        )
    _expired_events_sync(connection, [row.id for row in rows])
    return len(rows)


def _expired_events_sync(connection: Connection, authorization_ids: list[uuid.UUID]) -> None:
    """`card.authorization.expired` for each released hold, in the same transaction,
    its data shaped like the API's authorization (cards/schemas.py `AuthorizationOut`)."""
    released = connection.execute(
        select(AUTHORIZATION, CARD.c.last4, CARD.c.owner_id)
        .select_from(AUTHORIZATION.outerjoin(CARD, CARD.c.id == AUTHORIZATION.c.card_id))
        .where(AUTHORIZATION.c.id.in_(authorization_ids))
        .order_by(AUTHORIZATION.c.id)
    ).all()
    for row in released:
        outbox.emit_sync(
            connection,
            type="card.authorization.expired",
            owner_id=row.owner_id,
            subject_type="card_authorization",
            subject_id=row.id,
            account_id=row.account_id,
            data={
                "id": row.id,
                "card_id": row.card_id,
                "card_last4": row.last4,
                "status": row.status,
                "decline_reason": row.decline_reason,
                "amount": row.amount_minor,
                "currency": row.currency,
                "captured_amount": row.captured_minor,
                "merchant_name": row.merchant_name,
                "merchant_category": row.merchant_category,
                "capture_entry_id": row.capture_entry_id,
                "created_at": row.created_at,
                "expires_at": row.expires_at,
                "settled_at": row.settled_at,
            },
        )


def release_on_accounts_sync(
    connection: Connection, account_ids: Sequence[uuid.UUID], *, now: dt.datetime
) -> int:
    """For a movement that holds these accounts' locks: release their lapsed holds."""
    return release_sync(
        connection,
        now=now,
        where=AUTHORIZATION.c.account_id.in_(list(account_ids)),
        skip_locked=True,
    )


def _release_on_account(
    connection: Connection,
    account_id: uuid.UUID,
    amount_minor: int,
    *,
    uncount_minor: int,
    today: dt.date,
    now: dt.datetime,
) -> None:
    """Take `amount_minor` off the account's `held_minor` (and `uncount_minor`, placed
    today, off today's outgoing), stamped under its lock, never before its last change."""
    account = connection.execute(
        select(
            ACCOUNT.c.held_minor,
            ACCOUNT.c.outgoing_on,
            ACCOUNT.c.outgoing_minor,
            ACCOUNT.c.stamped_at,
        )
        .where(ACCOUNT.c.id == account_id)
        .with_for_update()
    ).one()
    if amount_minor > account.held_minor:
        raise LedgerInvariantError("releasing more than the account holds")
    values: dict[str, Any] = {"held_minor": account.held_minor - amount_minor}
    if uncount_minor and account.outgoing_on == today:
        values["outgoing_minor"] = max(0, account.outgoing_minor - uncount_minor)
    stamped = account.stamped_at
    values["stamped_at"] = now if stamped is None or now >= stamped else stamped
    connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(values))
