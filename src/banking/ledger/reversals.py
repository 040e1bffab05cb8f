"""Reversals and refunds: a new entry mirroring a posted one (or a part of it).

Guarantees: the original entry is never edited; a reversal is an ordinary two-leg entry
in the opposite direction (money goes back from the original's target to its source),
named `reversed_entry_id`; the posted reversals and refunds of one entry never add up to
more than the entry (declined `already_reversed`, checked under the ledger's locks of the
entry's customer accounts, so concurrent reversals are included; `banking ledger verify`,
steps `reversal_sum` and `reversal_shape`). A reversal that would take an account below
zero (or below its held amount) is declined `insufficient_funds`, as any debit: the bank
opens no negative balance; staff recover the money by other means first.
A reversal or refund is never itself reversed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, NotFound
from banking.ledger import internal
from banking.ledger.models import EntryKind, EntryStatus
from banking.ledger.service import ENTRY, Movement, reversed_sum_sync

REVERSAL_KINDS = frozenset({EntryKind.reversal.value, EntryKind.card_refund.value})


class NotReversible(Conflict):
    code = "not_reversible"
    title = "This entry cannot be reversed (it is declined, or itself a reversal or refund)."


@dataclass(frozen=True, slots=True)
class Original:
    id: uuid.UUID
    kind: str
    status: str
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID
    amount_minor: int
    currency: str
    reversed_entry_id: uuid.UUID | None


def read_original_sync(connection: Connection, entry_id: uuid.UUID) -> Original:
    row: Any = connection.execute(
        select(
            ENTRY.c.id,
            ENTRY.c.kind,
            ENTRY.c.status,
            ENTRY.c.source_account_id,
            ENTRY.c.target_account_id,
            ENTRY.c.amount_minor,
            ENTRY.c.currency,
            ENTRY.c.reversed_entry_id,
        ).where(ENTRY.c.id == entry_id)
    ).first()
    if row is None:
        raise NotFound("No such journal entry.")
    return Original(*row)


def reversal_movement(
    connection: Connection,
    original: Original,
    *,
    kind: EntryKind,
    amount_minor: int | None,
    description: str | None,
    initiator_id: uuid.UUID | None,
    idempotency_key: str | None,
    client: ClientInfo | None,
) -> Movement:
    """The movement that gives back `amount_minor` of `original` (all that is left when
    None). The ledger checks the sum again under its locks."""
    if original.status != EntryStatus.posted.value:
        raise NotReversible("Only a posted entry can be reversed.")
    if original.kind in REVERSAL_KINDS or original.reversed_entry_id is not None:
        raise NotReversible("A reversal or refund cannot itself be reversed.")
    if amount_minor is None:
        remaining = original.amount_minor - reversed_sum_sync(connection, original.id)
        # Nothing left: ask for the whole entry, so the ledger records the decline.
        amount_minor = remaining if remaining > 0 else original.amount_minor
    source, target = original.target_account_id, original.source_account_id
    return Movement(
        kind=kind,
        source_account_id=source,
        target_account_id=target,
        # The account the money leaves lists a declined reversal; an internal one has no
        # history, so then the account it goes back to.
        origin_account_id=target if internal.is_internal(source) else source,
        amount_minor=amount_minor,
        currency=original.currency,
        description=description,
        initiator_id=initiator_id,
        idempotency_key=idempotency_key,
        client=client,
        reverses_entry_id=original.id,
    )
