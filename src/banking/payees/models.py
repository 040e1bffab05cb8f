"""Saved beneficiaries: a member's named payees (accounts of the bank they pay often)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from banking.core.db import Base, UTCDateTime, new_id, utcnow


class Payee(Base):
    __tablename__ = "payee"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str | None] = mapped_column(String(60), default=None)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("account.id"))
    account_number: Mapped[str] = mapped_column(String(12))
    currency: Mapped[str] = mapped_column(String(3))
    # The holder's name masked as the lookup route shows it ("A*** B***").
    holder_name: Mapped[str] = mapped_column(String(64))
    # When the payee was added: transfers to it above NEW_PAYEE_LIMIT_MINOR are declined
    # until NEW_PAYEE_COOLDOWN_S have passed since.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_payee_owner_id_account_id", "owner_id", "account_id", unique=True),)
