from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StringConstraints

from banking.accounts.schemas import Currency
from banking.core.schemas import Amount, NoControl, OutSchema, Schema

CardholderName = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        min_length=2,
        max_length=26,
        # Ends in a non-space: the same names after stripping, and a schema that does
        # not offer "A " (one letter once stripped).
        pattern=r"^[A-Za-z]([A-Za-z .'-]*[A-Za-z.'-])?$",
    ),
    NoControl,
]
# Input of the card network: only the shape is checked here, the values by the service.
CardNumber = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{12,19}$")]
Cvv = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{3,4}$")]
MerchantName = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
    NoControl,
]
MerchantCategory = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[0-9]{4}$"),
    Field(description="ISO 18245 merchant category code (MCC), e.g. 5942."),
]
Limit = Annotated[StrictInt, Field(ge=1, le=10**15, description="Minor units; null: no limit.")]


class CardIssueIn(Schema):
    type: Literal["virtual", "physical"]
    cardholder_name: CardholderName | None = Field(
        default=None, description="Name on the card; defaults to the account holder's name."
    )


class CardLimitsIn(Schema):
    """Omit a field to keep its limit; send null to remove it."""

    per_transaction_limit: Limit | None = None
    daily_limit: Limit | None = None


class CardOut(OutSchema):
    """A card as shown everywhere after issuance: never the full number nor the CVV."""

    id: uuid.UUID
    account_id: uuid.UUID
    type: str
    brand: str
    status: str = Field(description="active, frozen or cancelled.")
    frozen_by_admin: bool = Field(
        description="Only the bank can unfreeze the card (an admin froze it, or it was "
        "frozen for wrong CVVs or expiry dates)."
    )
    frozen_reason: str | None = Field(
        description="Why the card is frozen: `owner`, `admin`, or `cvv_attempts_exceeded` "
        "(CARD_CVV_MAX_FAILURES consecutive wrong CVVs or expiry dates). Null when it is "
        "not frozen."
    )
    cardholder_name: str
    last4: str
    exp_month: int
    exp_year: int
    currency: str
    per_transaction_limit: int | None = Field(description="Minor units of `currency`.")
    daily_limit: int | None = Field(description="Minor units of `currency`, per UTC day.")
    created_at: dt.datetime
    cancelled_at: dt.datetime | None


class CardIssuedOut(CardOut):
    """The issuance answer: the only response that ever shows the PAN and CVV."""

    pan: str = Field(description="The full card number; shown once, here only.")
    cvv: str = Field(description="The card verification value; shown once, here only.")


class CardPage(OutSchema):
    items: list[CardOut]
    next_cursor: str | None = None


class AuthorizationIn(Schema):
    card_number: CardNumber
    exp_month: Annotated[StrictInt, Field(ge=1, le=12)]
    exp_year: Annotated[StrictInt, Field(ge=2000, le=2200)]
    cvv: Cvv
    amount: Amount
    currency: Currency
    merchant_name: MerchantName
    merchant_category: MerchantCategory


class CaptureIn(Schema):
    amount: Amount = Field(description="At most the authorized amount; the rest is released.")


class RefundIn(Schema):
    amount: Amount | None = Field(
        default=None,
        description="Part of the captured amount to give back; all that is left when omitted.",
    )


class RefundOut(OutSchema):
    """A card refund: a new `card_refund` entry from the card-network settlement account
    back to the card's account, linked to the capture it gives back (part of)."""

    id: uuid.UUID = Field(description="The refund's journal entry.")
    kind: str
    status: str
    authorization_id: uuid.UUID
    reversed_entry_id: uuid.UUID = Field(description="The capture entry (never edited).")
    account_id: uuid.UUID
    amount: int
    currency: str
    refunded_amount: int = Field(description="All refunds of this capture so far, this one in.")
    captured_amount: int
    created_at: dt.datetime


class AuthorizationOut(OutSchema):
    id: uuid.UUID
    card_id: uuid.UUID | None = Field(description="Null when the card number is unknown.")
    card_last4: str | None
    status: str = Field(description="approved, declined, captured, voided or expired.")
    decline_reason: str | None = Field(description="Set when status is declined.")
    amount: int
    currency: str
    captured_amount: int
    merchant_name: str
    merchant_category: str
    capture_entry_id: uuid.UUID | None = Field(description="The journal entry of the capture.")
    created_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="When an approved hold lapses.")
    settled_at: dt.datetime | None = Field(description="When it was captured, voided or expired.")


class AuthorizationPage(OutSchema):
    items: list[AuthorizationOut]
    next_cursor: str | None = None


class RotationReport(OutSchema):
    reencrypted: int
    cards: int
    cvv_on_retired_keys: int
