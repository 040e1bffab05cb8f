from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from banking.core.schemas import Amount, Description, OutSchema, Schema


class ApprovalOut(OutSchema):
    """A four-eyes request: who asked, what for, and the second person's decision."""

    id: uuid.UUID
    kind: str = Field(
        description="`large_transfer`, `entry_reversal`, `account_unfreeze` or "
        "`daily_limit_raise`. For the last two (staff actions on one account) "
        "`source_account_id` and `target_account_id` are both that account and nothing "
        "moves: `amount` is 0 for an unfreeze, the new daily limit for a raise."
    )
    status: str = Field(
        description="`pending_approval`, `executed`, `failed` (declined when approved: by "
        "the ledger, or for a staff action because the account changed meanwhile; see "
        "`decline_reason`), `rejected` or `expired`."
    )
    maker_id: uuid.UUID = Field(description="Who asked.")
    owner_id: uuid.UUID | None = Field(
        description="The member whose money it is; null for a staff-only request "
        "(`account_unfreeze`, `daily_limit_raise`), which members do not see."
    )
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID
    target_account_number: str | None = Field(description="Masked: only the last four digits.")
    amount: int
    currency: str
    held_amount: int = Field(description="Held on the source while pending; 0 afterwards.")
    description: str | None
    decided_by: uuid.UUID | None = Field(description="The second person.")
    decided_at: dt.datetime | None
    reason: str | None
    decline_reason: str | None
    entry_id: uuid.UUID | None = Field(
        description="The transfer or reversal entry, once approved (or its recorded decline)."
    )
    reversed_entry_id: uuid.UUID | None = Field(
        default=None, description="`entry_reversal`: the entry to give back (part of)."
    )
    daily_outgoing_limit: int | None = Field(
        default=None, description="`daily_limit_raise`: the limit asked for (minor units)."
    )
    previous_daily_outgoing_limit: int | None = Field(
        default=None,
        description="`daily_limit_raise`: the account's limit when it was asked (the bank's "
        "default if it had none of its own).",
    )
    created_at: dt.datetime
    expires_at: dt.datetime


class RejectIn(Schema):
    reason: Description = Field(min_length=1)


class ApproveIn(Schema):
    reason: Description | None = None


class ThresholdIn(Schema):
    threshold: Amount = Field(
        description="Transfers from this account above it need an approval; at least the "
        "bank's default for the account's currency."
    )


class ThresholdOut(OutSchema):
    account_id: uuid.UUID
    threshold: int
