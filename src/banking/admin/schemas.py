from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from banking.accounts.schemas import AccountOut
from banking.core.schemas import Amount, Description, OutSchema, Schema


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
    reversed_entry_id: uuid.UUID | None = None
    balance_after: int | None = Field(
        default=None,
        description="With `account_id`: that account's balance after this entry (null for "
        "a declined entry); null without the filter.",
    )


class ReverseIn(Schema):
    reason: Annotated[Description, StringConstraints(min_length=1)] = Field(
        description="Why the entry is reversed; it becomes the reversal's description."
    )
    amount: Amount | None = Field(
        default=None,
        description="Part of the entry to give back (a partial refund); all that is left "
        "when omitted.",
    )


class LimitsIn(Schema):
    daily_outgoing_limit: Amount | None = Field(
        description="The account's new daily outgoing limit in minor units; null returns it "
        "to the bank's default (`DAILY_OUTGOING_LIMIT_MINOR`)."
    )
    reason: Annotated[Description, StringConstraints(min_length=1)] = Field(
        description="Why the limit changes; kept in the audit log."
    )
