from __future__ import annotations

import datetime as dt
import uuid

from pydantic import ConfigDict, Field, StrictInt, model_validator

from banking.accounts.schemas import AccountNumber
from banking.core.schemas import Amount, Description, OutSchema, Schema
from banking.schedules.models import Frequency


class ScheduledTransferIn(Schema):
    # Exactly one target, in the published schema as in `_one_target`.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("target_account_id", "target_account_number", "payee_id")
            ]
        }
    )

    source_account_id: uuid.UUID
    target_account_id: uuid.UUID | None = Field(
        default=None, description="One of your own accounts."
    )
    target_account_number: AccountNumber | None = Field(
        default=None, description="Any account in the bank, by its 12-digit number."
    )
    payee_id: uuid.UUID | None = Field(default=None, description="One of your payees.")
    amount: Amount
    description: Description | None = None
    first_run_at: dt.datetime = Field(
        description="RFC 3339 with a time zone, not in the past: the first occurrence."
    )
    frequency: Frequency
    count: StrictInt | None = Field(
        default=None, ge=1, le=1000, description="Stop after this many occurrences."
    )
    until: dt.datetime | None = Field(
        default=None, description="Stop after this moment (RFC 3339 with a time zone)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> ScheduledTransferIn:
        targets = (self.target_account_id, self.target_account_number, self.payee_id)
        if sum(target is not None for target in targets) != 1:
            raise ValueError(
                "give exactly one of target_account_id, target_account_number and payee_id"
            )
        for name in ("first_run_at", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. Z or +02:00)")
        return self


class ScheduledTransferUpdateIn(Schema):
    amount: Amount | None = Field(default=None, description="null or absent: unchanged.")
    description: Description | None = Field(default=None, description="null removes it.")
    next_run_at: dt.datetime | None = Field(
        default=None,
        description="Move the next occurrence (RFC 3339, not in the past); the series "
        "goes on from there at the same frequency. null or absent: unchanged.",
    )

    @model_validator(mode="after")
    def _aware(self) -> ScheduledTransferUpdateIn:
        if self.next_run_at is not None and self.next_run_at.tzinfo is None:
            raise ValueError("next_run_at needs a time zone (e.g. Z or +02:00)")
        return self


class ScheduleRunOut(OutSchema):
    occurrence: int
    attempt: int
    status: str = Field(description="posted, declined (to be retried) or failed (last try).")
    entry_id: uuid.UUID | None = Field(description="The journal entry (posted or declined).")
    reason: str | None = Field(description="Why it was declined, e.g. insufficient_funds.")
    scheduled_for: dt.datetime
    ran_at: dt.datetime
    skipped: int = Field(
        description="Earlier occurrences missed while the service was down, merged into "
        "this run (a missed occurrence runs once, not once per missed date)."
    )


class ScheduledTransferOut(OutSchema):
    id: uuid.UUID
    status: str = Field(description="active, completed or cancelled.")
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID | None = Field(
        description="Set when the target is one of your own accounts."
    )
    target_account_number: str = Field(description="Masked: only the last four digits.")
    payee_id: uuid.UUID | None
    amount: int
    currency: str
    description: str | None
    frequency: str
    first_run_at: dt.datetime
    count: int | None
    until: dt.datetime | None
    next_occurrence: int | None = Field(description="The number of the next occurrence.")
    next_run_at: dt.datetime | None = Field(
        description="When the next occurrence (or retry) runs; null once finished."
    )
    last_run_at: dt.datetime | None
    last_result: str | None = Field(description="posted, declined or failed.")
    last_reason: str | None
    created_at: dt.datetime
    runs: list[ScheduleRunOut] | None = Field(
        default=None, description="Its runs, newest first (on the single-object routes)."
    )


class ScheduledTransferPage(OutSchema):
    items: list[ScheduledTransferOut]
    next_cursor: str | None = None


class RunDueOut(OutSchema):
    posted: int
    declined: int
    failed: int
