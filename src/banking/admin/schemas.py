from __future__ import annotations

import datetime as dt
import uuid

from banking.accounts.schemas import AccountOut
from banking.core.schemas import Description, OutSchema, Schema


class AdminAccountOut(AccountOut):
    owner_id: uuid.UUID | None


class FreezeIn(Schema):
    reason: Description | None = None


class AdminEntryOut(OutSchema):
    id: uuid.UUID
    kind: str
    status: str
    amount: int
    currency: str
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID
    origin_account_id: uuid.UUID
    description: str | None
    initiator_id: uuid.UUID | None
    decline_reason: str | None
    created_at: dt.datetime
