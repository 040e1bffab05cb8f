from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from banking.core.schemas import Description, OutSchema, Schema


class RateIn(Schema):
    rate_bps: int = Field(
        strict=True, ge=0, le=10_000, description="Nominal annual rate in basis points."
    )
    effective_on: dt.date | None = Field(
        default=None, description="First day at this rate (bank time zone); today when omitted."
    )
    reason: Description | None = None


class RateChangeOut(OutSchema):
    rate_bps: int
    effective_on: dt.date
    set_by: uuid.UUID | None
    reason: str | None
    created_at: dt.datetime


class RateOut(OutSchema):
    account_id: uuid.UUID
    rate_bps: int = Field(description="Today's nominal annual rate, in basis points.")
    default_rate_bps: int = Field(description="The product default (SAVINGS_RATE_BPS).")
    history: list[RateChangeOut] = Field(description="Every rate change, in the order made.")
