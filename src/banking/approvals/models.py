"""Four-eyes approvals: requests that wait for a second person, and staff-set thresholds."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, UTCDateTime, new_id, utcnow


class ApprovalKind(StrEnum):
    large_transfer = "large_transfer"
    """A member's transfer above the approval threshold: the amount is held meanwhile."""
    entry_reversal = "entry_reversal"
    """An admin's reversal of a journal entry: a second admin must approve it."""
    account_unfreeze = "account_unfreeze"
    """An admin asked to lift an account's freeze: it stays frozen until a second admin
    approves."""
    daily_limit_raise = "daily_limit_raise"
    """An admin asked to raise an account's daily outgoing limit above the bank's default:
    the limit changes only when a second admin approves."""


class ApprovalStatus(StrEnum):
    pending_approval = "pending_approval"
    executed = "executed"
    """Approved by a second person and executed (the entry is posted, the account unfrozen
    or its limit raised)."""
    failed = "failed"
    """Approved, but declined at that moment (the ledger's decline is recorded; for a staff
    action, the account changed meanwhile): see `decline_reason`."""
    rejected = "rejected"
    expired = "expired"


class Approval(Base):
    __tablename__ = "approval"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    # The person who asked (the maker) and the member whose money it is.
    maker_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    source_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    target_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The amount held on the source while pending (0 once released or used).
    held_minor: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(String(140), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # The checker and their decision.
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    reason: Mapped[str | None] = mapped_column(String(140), default=None)
    decline_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("journal_entry.id"), default=None
    )
    details: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_approval_status_created_at", "status", "created_at"),
        Index("ix_approval_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_approval_source_account_id_status", "source_account_id", "status"),
    )


class ApprovalThreshold(Base):
    """A staff-set threshold for one account, above the bank's default for its currency."""

    __tablename__ = "approval_threshold"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"), primary_key=True)
    threshold_minor: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
