from __future__ import annotations

import datetime as dt
import uuid

from pydantic import ConfigDict, Field, model_validator

from banking.accounts.schemas import AccountNumber
from banking.core.schemas import Amount, Description, OutSchema, Schema


class DepositIn(Schema):
    amount: Amount
    description: Description | None = None


class WithdrawalIn(Schema):
    amount: Amount
    description: Description | None = None


class TransferIn(Schema):
    # Exactly one target, in the published schema as in `_one_target`.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["target_account_id"],
                    "properties": {"target_account_id": {"type": "string"}},
                },
                {
                    "required": ["target_account_number"],
                    "properties": {"target_account_number": {"type": "string"}},
                },
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
    amount: Amount
    description: Description | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        if (self.target_account_id is None) == (self.target_account_number is None):
            raise ValueError("give exactly one of target_account_id and target_account_number")
        return self


class EntryOut(OutSchema):
    """A deposit or withdrawal as seen from the account it was made on."""

    id: uuid.UUID
    kind: str
    status: str
    account_id: uuid.UUID
    amount: int = Field(description="Signed from the account's view: credits > 0.")
    currency: str
    balance_after: int
    description: str | None
    created_at: dt.datetime


class TransferOut(OutSchema):
    id: uuid.UUID
    kind: str
    status: str
    source_account_id: uuid.UUID
    target_account_id: uuid.UUID | None = Field(
        description="Set when the target is one of your own accounts."
    )
    target_account_number: str = Field(description="Masked: only the last four digits.")
    amount: int
    currency: str
    balance_after: int = Field(description="The source account's balance after the transfer.")
    description: str | None
    created_at: dt.datetime


class TransactionOut(OutSchema):
    id: uuid.UUID = Field(description="The journal entry (e.g. the transfer id).")
    posting_id: int | None
    kind: str
    status: str
    amount: int = Field(description="Signed from this account's view: credits > 0.")
    currency: str
    balance_after: int | None
    description: str | None
    counterparty_account_number: str | None
    decline_reason: str | None
    created_at: dt.datetime


class TransactionPage(OutSchema):
    items: list[TransactionOut]
    next_cursor: str | None = None
