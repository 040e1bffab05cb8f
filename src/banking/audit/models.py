"""The append-only audit log.

Rows are inserted unsealed (no lock on the hot path); the sealer assigns each a
`chain_seq` and `hash = HMAC-SHA256(audit key, key id + prev_hash + canonical row)` in
order, with the id of the key in `key_id`, so the chain is tamper-evident from the moment a
row is sealed (within about a second) to anyone without the audit key.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, BigId, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    event_type: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32), default=None)
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    details: Mapped[str] = mapped_column(Text, default="{}")
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, default=None, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # The id of the audit key that sealed the row (see `audit.service.AuditKey`).
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)

    __table_args__ = (
        Index("ix_audit_event_actor_id_id", "actor_id", "id"),
        Index("ix_audit_event_event_type_id", "event_type", "id"),
        Index(
            "ix_audit_event_unsealed",
            "id",
            sqlite_where=chain_seq.is_(None),
            postgresql_where=chain_seq.is_(None),
        ),
    )
