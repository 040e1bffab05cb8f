"""Accounts: customer accounts and the bank's internal settlement accounts.

The cached `balance_minor` and `held_minor` of customer accounts are written only by
`banking.ledger`. Internal accounts (`is_internal`) never have their cached balance
updated: their balance is the sum of their postings, so they are never a hot lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, UTCDateTime, new_id, utcnow


class AccountType(StrEnum):
    checking = "checking"
    savings = "savings"
    internal = "internal"
    """A bank settlement account (cash, card network); never owned by a user."""


class AccountStatus(StrEnum):
    active = "active"
    frozen = "frozen"
    """Set by an admin: no debits, credits still allowed."""
    closed = "closed"
    """Final: nothing moves in or out."""


class Account(Base):
    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Internal accounts have no number: nobody can name them in a transfer.
    number: Mapped[str | None] = mapped_column(String(12), unique=True, default=None)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user.id", ondelete="RESTRICT"), default=None
    )
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # For internal accounts, what they settle (e.g. "cash"); None for customer accounts.
    purpose: Mapped[str | None] = mapped_column(String(32), default=None)
    type: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.active.value)
    nickname: Mapped[str | None] = mapped_column(String(100), default=None)
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    held_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # None means the bank-wide default (settings.daily_outgoing_limit_minor).
    daily_outgoing_limit_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Debits so far on `outgoing_on` (UTC date); reset by the ledger when the day changes.
    outgoing_on: Mapped[dt.date | None] = mapped_column(Date, default=None)
    outgoing_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # The latest time stamped on this account's postings and holds, written under the
    # account's lock: the next one is stamped no earlier (the ledger's time order).
    stamped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_account_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_account_purpose_currency", "purpose", "currency", unique=True),
        CheckConstraint("held_minor >= 0", name="held_not_negative"),
        CheckConstraint("is_internal OR balance_minor >= 0", name="customer_balance_not_negative"),
    )


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What a money request needs to know about an account, read on the ledger's connection."""

    id: uuid.UUID
    owner_id: uuid.UUID | None
    number: str | None
    currency: str
