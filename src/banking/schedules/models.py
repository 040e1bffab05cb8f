"""Scheduled and standing transfers, and the record of each run."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, BigId, UTCDateTime, new_id, utcnow


class Frequency(StrEnum):
    once = "once"
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class ScheduleStatus(StrEnum):
    active = "active"
    completed = "completed"
    """Every occurrence has run (or `count`/`until` ended the series)."""
    cancelled = "cancelled"


class RunStatus(StrEnum):
    posted = "posted"
    declined = "declined"
    """Declined; the occurrence will be tried again (SCHEDULE_RETRIES)."""
    failed = "failed"
    """Declined on its last try; the schedule goes on with the next occurrence."""


class ScheduledTransfer(Base):
    __tablename__ = "scheduled_transfer"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("user.id"))
    source_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    target_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    target_account_number: Mapped[str] = mapped_column(String(12))
    # Whether the target is one of the owner's accounts (its id is then shown).
    target_is_own: Mapped[bool] = mapped_column(Boolean, default=False)
    # The payee it was made to, if any (no foreign key: deleting a payee keeps the
    # schedule and its target account).
    payee_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(140), default=None)
    frequency: Mapped[str] = mapped_column(String(16))
    first_run_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Occurrence n falls at `occurrence_at(series_start_at, frequency, n - series_base)`;
    # moving the next date (PATCH) restarts the series there.
    series_start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    series_base: Mapped[int] = mapped_column(Integer, default=1)
    count: Mapped[int | None] = mapped_column(Integer, default=None)
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    status: Mapped[str] = mapped_column(String(16), default=ScheduleStatus.active.value)
    # The next occurrence (1-based), its nominal time, the declined tries it had so far,
    # and when it is due (its nominal time, or the next retry). Null once finished.
    next_occurrence: Mapped[int] = mapped_column(Integer, default=1)
    next_occurrence_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_scheduled_transfer_status_next_run_at", "status", "next_run_at"),
        Index("ix_scheduled_transfer_owner_id_created_at", "owner_id", "created_at"),
    )


class ScheduledTransferRun(Base):
    """One try of one occurrence; at most one row per (schedule, occurrence, attempt)."""

    __tablename__ = "scheduled_transfer_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    schedule_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("scheduled_transfer.id"))
    occurrence: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ran_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Earlier occurrences that fell due while no scheduler ran, merged into this run.
    skipped: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index(
            "ix_scheduled_transfer_run_schedule_id_occurrence_attempt",
            "schedule_id",
            "occurrence",
            "attempt",
            unique=True,
        ),
    )
