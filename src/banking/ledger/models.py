"""Journal entries and their postings: the ledger's only tables.

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


class EntryStatus(StrEnum):
    posted = "posted"
    declined = "declined"


class JournalEntry(Base):
    __tablename__ = "journal_entry"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    # The movement as requested: money leaves `source`, arrives at `target`.
    source_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    target_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    # The customer account the request was made on; its history lists declined attempts.
    origin_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(140), default=None)
    initiator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    decline_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_journal_entry_created_at_id", "created_at", "id"),
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
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journal_entry.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"))
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
