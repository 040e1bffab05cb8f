from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

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
                {
                    "required": ["payee_id"],
                    "properties": {"payee_id": {"type": "string"}},
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
    payee_id: uuid.UUID | None = Field(default=None, description="One of your payees.")
    amount: Amount
    description: Description | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        targets = (self.target_account_id, self.target_account_number, self.payee_id)
        if sum(target is not None for target in targets) != 1:
            raise ValueError(
                "give exactly one of target_account_id, target_account_number and payee_id"
            )
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
    reversed_entry_id: uuid.UUID | None = Field(
        default=None,
        description="On a `reversal` or `card_refund`: the entry it gives back (part of).",
    )
    counterparty_name: str | None = Field(
        default=None,
        description=(
            "Who is on the other side: the merchant of a card payment (and of its refund); "
            "for a transfer, the other holder's full name when the money came in or both "
            "accounts are yours, else the masked name the payee lookup shows "
            "(`G*** H***`); null for cash deposits and withdrawals and interest."
        ),
        examples=["Grace Hopper", "Corner Café"],
    )


class TransactionPage(OutSchema):
    items: list[TransactionOut]
    next_cursor: str | None = None


class BatchMode(StrEnum):
    all_or_nothing = "all_or_nothing"
    """One journal transaction: if any item is declined, none posts."""
    independent = "independent"
    """Each item posts or is declined on its own."""


MAX_BATCH_ITEMS = 1000


class TransferBatchIn(Schema):
    mode: BatchMode
    items: list[TransferIn] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description="Up to 1,000 transfers from your accounts, each like POST /v1/transfers.",
    )


class BatchItemOut(OutSchema):
    index: int
    status: str = Field(
        description="posted, declined (recorded, with its reason) or not_posted (an "
        "all_or_nothing batch rejected because of another item, or a request error)."
    )
    code: str | None = Field(default=None, description="Why it did not post.")
    detail: str | None = None
    transfer: TransferOut | None = None


class TransferBatchOut(OutSchema):
    id: uuid.UUID
    mode: str
    status: str = Field(
        description="completed (every item was tried; see each one) or rejected (an "
        "all_or_nothing batch in which an item was declined: nothing posted)."
    )
    posted: int
    declined: int
    failed_item_index: int | None = Field(
        default=None, description="all_or_nothing: the item that stopped the batch."
    )
    items: list[BatchItemOut]
