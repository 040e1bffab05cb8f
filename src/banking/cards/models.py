"""Debit cards and their authorizations (card payments held, then captured or released).

A card row never holds a PAN or CVV in clear: the PAN is AES-256-GCM ciphertext (with the
id of its key) plus a keyed digest for look-ups; the CVV exists only as a keyed digest.
An authorization row is the record of one card payment request; while it is `approved`
its amount is held on the account (`account.held_minor`, written only by the ledger).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, UTCDateTime, new_id, utcnow

# Card holds are a ledger concept: the ledger owns their table (ledger/models.py) and
# releases lapsed ones; the names stay importable from here for the cards domain.
from banking.ledger.models import AuthorizationStatus, CardAuthorization

__all__ = [
    "AuthorizationStatus",
    "Card",
    "CardAuthorization",
    "CardStatus",
    "CardType",
    "FrozenReason",
]


class CardType(StrEnum):
    virtual = "virtual"
    physical = "physical"


class CardStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    """Temporarily refused by the network: every authorization is declined."""
    cancelled = "cancelled"
    """Final."""


class FrozenReason(StrEnum):
    owner = "owner"
    """The cardholder froze it; they can unfreeze it."""
    admin = "admin"
    """An admin froze it; only an admin can unfreeze it."""
    cvv_attempts_exceeded = "cvv_attempts_exceeded"
    """The bank froze it after CARD_CVV_MAX_FAILURES consecutive wrong CVVs; only an admin
    can unfreeze it (which also resets the count)."""


class Card(Base):
    __tablename__ = "card"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("account.id", ondelete="RESTRICT")
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("user.id", ondelete="RESTRICT"))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CardStatus.active.value)
    # An admin's freeze can only be lifted by an admin.
    frozen_by_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why a frozen card is frozen (a `FrozenReason`); None while it is not frozen.
    frozen_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # Consecutive authorizations with a wrong CVV or expiry date; a correct CVV sets it
    # back to 0.
    cvv_failures: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    brand: Mapped[str] = mapped_column(String(16))
    cardholder_name: Mapped[str] = mapped_column(String(26))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(SmallInteger)
    exp_year: Mapped[int] = mapped_column(SmallInteger)
    # The PAN: nonce + AES-256-GCM ciphertext (card id as associated data), the id of the
    # key that sealed it, and a keyed digest (same key) for look-ups and uniqueness.
    pan_key_id: Mapped[str] = mapped_column(String(32))
    pan_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    pan_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The CVV: only a keyed digest bound to the card; it stays under the key it was made
    # with (the CVV itself is gone), so that key is needed until the card is replaced.
    cvv_key_id: Mapped[str] = mapped_column(String(32))
    cvv_digest: Mapped[str] = mapped_column(String(64))
    # Spending limits in minor units of the account's currency; None means no card limit.
    per_transaction_limit_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    daily_limit_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_card_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_card_account_id", "account_id"),
    )
