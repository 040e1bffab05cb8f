"""Savings interest: rate history, daily accruals and monthly postings."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, BigId, UTCDateTime, utcnow


class InterestRate(Base):
    """A savings account's nominal annual rate from `effective_on` (in basis points)."""

    __tablename__ = "interest_rate"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    rate_bps: Mapped[int] = mapped_column(Integer)
    effective_on: Mapped[dt.date] = mapped_column(Date)
    set_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    reason: Mapped[str | None] = mapped_column(String(140), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_interest_rate_account_id_effective_on", "account_id", "effective_on"),
    )


class InterestAccrual(Base):
    """One day's interest of one account, in micro-units of the minor unit (10^-6 cent),
    on the day's end-of-day balance (actual/365, rounded half-even to a micro-unit)."""

    __tablename__ = "interest_accrual"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"), primary_key=True)
    accrued_on: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    rate_bps: Mapped[int] = mapped_column(Integer)
    interest_micro: Mapped[int] = mapped_column(BigInteger)


class InterestPosting(Base):
    """One month's interest of one account: the month's accruals plus the remainder carried
    from the month before, posted rounded half-even to the minor unit; the new remainder
    is carried to the next month. One row per (account, month): posting twice is refused
    by the unique constraint in the same commit as the ledger entry."""

    __tablename__ = "interest_posting"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    month: Mapped[str] = mapped_column(String(7))
    accrued_micro: Mapped[int] = mapped_column(BigInteger)
    carried_in_micro: Mapped[int] = mapped_column(BigInteger)
    posted_minor: Mapped[int] = mapped_column(BigInteger)
    carried_out_micro: Mapped[int] = mapped_column(BigInteger)
    # The interest entry (None when nothing was due: it is all carried).
    entry_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("journal_entry.id"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "month"),)
