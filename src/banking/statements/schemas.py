"""Statement responses. Amounts and balances are integers in the currency's minor units."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from banking.core.schemas import OutSchema, Page
from banking.statements.service import Month, Statement


class StatementAccountOut(OutSchema):
    id: uuid.UUID
    number: str = Field(description="The account number, masked to its last four digits.")
    type: str
    currency: str
    holder_name: str
    nickname: str | None = None


class StatementPeriodOut(OutSchema):
    month: str = Field(description="YYYY-MM.", examples=["2024-03"])
    timezone: str = Field(description="The bank time zone the month is cut in.")
    start_date: dt.date = Field(description="First day of the month (local date).")
    end_date: dt.date = Field(description="Last day of the month (local date).")
    starts_at: dt.datetime = Field(description="Local midnight on the 1st, in UTC.")
    ends_at: dt.datetime = Field(description="Local midnight on the 1st of the next month, UTC.")


class StatementLineOut(OutSchema):
    entry_id: uuid.UUID
    posting_id: int
    date: dt.date = Field(description="The local date in the bank time zone.")
    created_at: dt.datetime
    kind: str
    description: str
    counterparty: str = Field(description='Masked account number, "Cash" or "Card network".')
    amount: int = Field(description="Signed: credits are positive, debits negative.")
    balance_after: int = Field(description="The running balance after this line.")


class PendingHoldOut(OutSchema):
    id: uuid.UUID
    created_at: dt.datetime
    description: str
    amount: int


class StatementOut(OutSchema):
    account: StatementAccountOut
    period: StatementPeriodOut
    currency: str
    title: str = Field(description='"Monthly statement", or "Statement to date" when partial.')
    is_partial: bool = Field(description="True for the current month: a statement to date.")
    opening_balance: int
    closing_balance: int
    total_credits: int
    total_debits: int = Field(description="The sum of the debits, as a positive number.")
    count: int = Field(description="How many lines.")
    lines: list[StatementLineOut]
    pending_holds: list[PendingHoldOut] = Field(
        description="Open card holds: not part of the balances or totals."
    )
    generated_at: dt.datetime


class StatementMonthOut(OutSchema):
    month: str = Field(examples=["2024-03"])
    is_partial: bool


StatementMonthPage = Page[StatementMonthOut]


def statement_out(statement: Statement) -> StatementOut:
    period = statement.period
    account = statement.account
    return StatementOut(
        account=StatementAccountOut(
            id=account.id,
            number=account.masked_number,
            type=account.type,
            currency=account.currency,
            holder_name=account.holder_name,
            nickname=account.nickname,
        ),
        period=StatementPeriodOut(
            month=str(period.month),
            timezone=period.timezone,
            start_date=period.month.first_day(),
            end_date=period.month.last_day(),
            starts_at=period.starts_at,
            ends_at=period.ends_at,
        ),
        currency=statement.currency,
        title=statement.title,
        is_partial=statement.is_partial,
        opening_balance=statement.opening_balance_minor,
        closing_balance=statement.closing_balance_minor,
        total_credits=statement.total_credits_minor,
        total_debits=statement.total_debits_minor,
        count=statement.count,
        lines=[
            StatementLineOut(
                entry_id=line.entry_id,
                posting_id=line.posting_id,
                date=line.date,
                created_at=line.created_at,
                kind=line.kind,
                description=line.description,
                counterparty=line.counterparty,
                amount=line.amount_minor,
                balance_after=line.balance_after_minor,
            )
            for line in statement.lines
        ],
        pending_holds=[
            PendingHoldOut(
                id=hold.id,
                created_at=hold.created_at,
                description=hold.description,
                amount=hold.amount_minor,
            )
            for hold in statement.pending_holds
        ],
        generated_at=statement.generated_at,
    )


def month_out(month: Month, *, current: Month) -> StatementMonthOut:
    return StatementMonthOut(month=str(month), is_partial=month == current)
