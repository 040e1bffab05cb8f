"""Events (the outbox) and webhook endpoints, deliveries and their attempts.

An `event` row is written in the same transaction as the change it tells of. It has no
`position` until the publisher (events/publisher.py, one process at a time) numbers it:
positions follow the order in which events became visible, so a reader that resumes
after position N never misses an event that committed late. Lists and the stream read
numbered events only.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, BigId, UTCDateTime, new_id, utcnow


class Event(Base):
    __tablename__ = "event"

    # A UUID whose first 48 bits are the creation time in milliseconds (UUIDv7 layout):
    # sortable by time, and known before the row is written.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    data: Mapped[str] = mapped_column(Text)
    # Assigned by the publisher; NULL until then. Its unique index also finds the events
    # still to number (`position IS NULL`), so no other index is needed for that.
    position: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (Index("ix_event_owner_id_position", "owner_id", "position"),)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("user.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    # JSON list of event types; ["*"] subscribes to every type.
    event_types: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    disabled_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    # The signing secret, encrypted (AES-256-GCM) under a key derived from the card key.
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    previous_secret_key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime, default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_delivery"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("event.id"))
    position: Mapped[int] = mapped_column(BigInteger)
    # pending, succeeded, failed (given up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (
        Index("ix_webhook_delivery_endpoint_id_position", "endpoint_id", "position", unique=True),
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(500), default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
