"""Journal entries and their postings, and the card holds: the ledger's tables.

A posted entry has two or more postings summing to zero per currency. A declined entry
has none: it records an attempt the rules refused, with the reason.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, BigId, UTCDateTime, new_id, utcnow


class EntryKind(StrEnum):
    deposit = "deposit"
    withdrawal = "withdrawal"
    transfer = "transfer"
    card_capture = "card_capture"
    reversal = "reversal"
    """A staff correction: mirrors a posted entry (or part of it), linked to it."""
    card_refund = "card_refund"
    """The card network gives back (part of) a captured card payment."""
    interest = "interest"
    """A savings account's monthly interest, paid from the interest-expense account."""


class EntryStatus(StrEnum):
    posted = "posted"
    declined = "declined"


class JournalEntry(Base):
    __tablename__ = "journal_entry"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # The movement as requested: money leaves `source`, arrives at `target`.
    source_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    target_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    # The customer account the request was made on; its history lists declined attempts.
    origin_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(140), default=None)
    initiator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    decline_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A reversal or card refund names the entry it gives back (part of); the original
    # is never edited. Posted reversals of one entry never sum above its amount.
    reversed_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("journal_entry.id"), default=None
    )

    __table_args__ = (
        Index("ix_journal_entry_created_at_id", "created_at", "id"),
        Index("ix_journal_entry_reversed_entry_id", "reversed_entry_id"),
        Index(
            "ix_journal_entry_origin_status_created", "origin_account_id", "status", "created_at"
        ),
        Index("ix_journal_entry_source_account_id", "source_account_id"),
        Index("ix_journal_entry_target_account_id", "target_account_id"),
    )


class Posting(Base):
    """One side of an entry on one account; `amount_minor` is signed (credit > 0)."""

    __tablename__ = "posting"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("journal_entry.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The account's balance right after this posting; None on internal accounts, whose
    # balance is derived and never tracked per posting.
    balance_after_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_posting_account_id_id", "account_id", "id"),
        Index("ix_posting_account_id_created_at", "account_id", "created_at"),
        Index("ix_posting_entry_id", "entry_id"),
    )


# The idempotency table is generic (core/); registering it here puts it in the metadata.
from banking.core.idempotency import IdempotencyRecord  # noqa: E402

__all__ = ["EntryKind", "EntryStatus", "IdempotencyRecord", "JournalEntry", "Posting"]


# Card holds. A card authorization holds money on the account (`account.held_minor`) until
# it is captured, voided or lapses: the ledger owns the table and releases lapsed holds
# (ledger/lapsed.py); the cards domain (cards/network code) creates and settles them.
class AuthorizationStatus(StrEnum):
    approved = "approved"
    """The amount is held on the account until captured, voided or expired."""
    declined = "declined"
    captured = "captured"
    voided = "voided"
    expired = "expired"
    """The hold ran past CARD_HOLD_DAYS without a capture and was released."""


class CardAuthorization(Base):
    __tablename__ = "card_authorization"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # None when the card number matched no card (the attempt is still recorded).
    card_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("card.id"), default=None)
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("account.id"), default=None
    )
    status: Mapped[str] = mapped_column(String(16))
    decline_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    merchant_name: Mapped[str] = mapped_column(String(100))
    merchant_category: Mapped[str] = mapped_column(String(4))
    capture_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("journal_entry.id"), default=None
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When an approved hold lapses; None for declines.
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # When it left `approved` (captured, voided or expired).
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_card_authorization_card_id_created_at", "card_id", "created_at", "id"),
        Index("ix_card_authorization_account_id_status", "account_id", "status"),
        Index("ix_card_authorization_status_expires_at", "status", "expires_at"),
        Index("ix_card_authorization_account_id_created_at", "account_id", "created_at"),
        Index("ix_card_authorization_capture_entry_id", "capture_entry_id"),
    )
