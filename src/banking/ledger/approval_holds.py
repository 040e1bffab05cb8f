"""Holds for transfers waiting for a four-eyes approval (`banking.approvals`).

A pending approval holds its amount on the source like a card hold: `held_minor` grows,
the available balance drops, the balance does not, and the hold counts in the day's
outgoing (the ledger's debit rules are applied when it is placed). Executing the approved
transfer is ONE `transfer` entry that releases the hold in the same `UPDATE`
(`Movement.release_hold_minor`), with the ledger's rules checked again at that moment; a
decline releases the hold. `banking ledger verify` counts pending approvals in
`held_matches_holds`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import Table, update
from sqlalchemy.engine import Connection

from banking.accounts.models import Account
from banking.core.deps import ClientInfo
from banking.ledger import holds
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind

ACCOUNT = cast(Table, Account.__table__)


def hold_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    limits: ledger.Limits,
    now: dt.datetime,
) -> tuple[ledger.Declined | None, dt.datetime]:
    """Hold `amount_minor` on the account under its lock, or say why the ledger would
    refuse the debit. Returns the decision and the time stamped."""
    account = holds.lock_account_sync(connection, account_id)
    now = holds.stamp_time(account, now)
    decline = holds.check_sync(
        account, amount_minor=amount_minor, currency=currency, limits=limits, today=now.date()
    )
    if decline is None:
        holds.place_sync(connection, account, amount_minor, now=now)
    return decline, now


def release_sync(
    connection: Connection,
    *,
    account_id: uuid.UUID,
    amount_minor: int,
    placed_on: dt.date,
    now: dt.datetime,
) -> None:
    """Give a pending approval's hold back (rejection, expiry); the day that counted it
    gets it back only if it is still that day."""
    today = now.date()
    holds.release_sync(
        connection,
        account_id,
        amount_minor,
        uncount_minor=amount_minor if placed_on == today else 0,
        today=today,
        now=now,
    )


def _set(connection: Connection, account_id: uuid.UUID, **values: Any) -> None:
    updated = connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(values))
    if updated.rowcount != 1:
        raise ledger.LedgerInvariantError("a locked account was not updated")


def execute_transfer_sync(
    connection: Connection,
    *,
    source_account_id: uuid.UUID,
    target_account_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    held_minor: int,
    placed_on: dt.date,
    limits: ledger.Limits,
    now: dt.datetime,
    description: str | None,
    initiator_id: uuid.UUID | None,
    client: ClientInfo | None = None,
) -> ledger.Result:
    """Post the approved transfer, consuming its hold, with every rule checked again.

    The hold was counted in the outgoing of `placed_on` and the ledger counts the debit
    again today, so today's count first gives back the amount (placed today: the debit
    replaces the hold; placed earlier: that day already counted it). A decline is
    recorded by the ledger; the hold is then released (the approval failed)."""
    # Both accounts locked in id order (as the ledger does), before anything is read.
    locked = {
        account_id: holds.lock_account_sync(connection, account_id)
        for account_id in sorted({source_account_id, target_account_id})
    }
    source = locked[source_account_id]
    if held_minor > source.held_minor:
        raise ledger.LedgerInvariantError("the approval's hold is not on the account")
    now = ledger.stamp_time(now, *(account.stamped_at for account in locked.values()))
    today = now.date()
    _set(
        connection,
        source_account_id,
        outgoing_on=today,
        outgoing_minor=max(source.outgoing_on_day(today) - amount_minor, -amount_minor),
    )
    movement = ledger.Movement(
        kind=EntryKind.transfer,
        source_account_id=source_account_id,
        target_account_id=target_account_id,
        origin_account_id=source_account_id,
        amount_minor=amount_minor,
        currency=currency,
        description=description,
        initiator_id=initiator_id,
        client=client,
        release_hold_minor=held_minor,
    )
    result = ledger.post_sync(connection, movement, limits=limits, now=now)
    if result.outcome is None or not result.outcome.posted:
        _set(
            connection,
            source_account_id,
            outgoing_on=source.outgoing_on,
            outgoing_minor=source.outgoing_minor,
        )
        release_sync(
            connection,
            account_id=source_account_id,
            amount_minor=held_minor,
            placed_on=placed_on,
            now=now,
        )
    return result
