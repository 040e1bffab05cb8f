"""The results of the calls that move money (deposits, withdrawals, transfers and batches,
reversals, limit changes, card authorizations) and the ledger's transaction lines; the
ones a POST returns carry its `idempotency_key` and whether the server `replayed` it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import (
    Any,
)

import httpx

from banking.client.models import Account
from banking.client.parsing import JSON, _json, _Reader, _replayed


@dataclass(frozen=True, slots=True)
class TransferBatch:
    """A batch's answer: each item's `status` (posted, declined, not_posted) and result."""

    id: str
    mode: str
    status: str
    posted: int
    declined: int
    items: list[JSON]
    replayed: bool
    raw: JSON = field(default_factory=dict, repr=False)


def _batch(response: httpx.Response) -> TransferBatch:
    r = _Reader(_json(response), "transfer batch")
    return TransferBatch(
        r.text("id"),
        r.text("mode"),
        r.text("status"),
        r.integer("posted"),
        r.integer("declined"),
        [item for item in r.array("items") if isinstance(item, dict)],
        _replayed(response),
        r.data,
    )


@dataclass(frozen=True, slots=True)
class Movement:
    """The answer to a deposit, withdrawal or transfer: the posted journal entry.

    Deposits and withdrawals are seen from their account (`account_id`; `amount` signed,
    credits > 0); a transfer from its source (`amount` > 0, `balance_after` the source's,
    `target_account_number` masked to its last four digits)."""

    id: str
    kind: str
    status: str
    amount: int
    currency: str
    balance_after: int | None
    """None for a transfer waiting for an approval (`status` `pending_approval`)."""
    created_at: dt.datetime | None
    description: str | None
    idempotency_key: str | None
    replayed: bool
    account_id: str | None = None
    source_account_id: str | None = None
    target_account_id: str | None = None
    target_account_number: str | None = None
    raw: JSON = field(default_factory=dict, repr=False)


def _movement(response: httpx.Response) -> Movement:
    r = _Reader(_json(response), "movement")
    return Movement(
        id=r.text("id"),
        kind=r.opt_text("kind") or "transfer",
        status=r.text("status"),
        amount=r.integer("amount"),
        currency=r.text("currency"),
        balance_after=r.opt_integer("balance_after"),
        created_at=r.opt_datetime("created_at"),
        description=r.opt_text("description"),
        idempotency_key=response.request.headers.get("idempotency-key"),
        replayed=_replayed(response),
        account_id=r.opt_text("account_id"),
        source_account_id=r.opt_text("source_account_id"),
        target_account_id=r.opt_text("target_account_id"),
        target_account_number=r.opt_text("target_account_number"),
        raw=r.data,
    )


@dataclass(frozen=True, slots=True)
class Transaction:
    id: str
    kind: str
    amount: int
    balance_after: int | None
    status: str
    created_at: dt.datetime | None
    description: str | None = None
    currency: str | None = None
    counterparty_account_number: str | None = None
    decline_reason: str | None = None
    reversed_entry_id: str | None = None
    """On a `reversal` or `card_refund`: the entry it gives back (part of)."""
    counterparty_name: str | None = None
    """The merchant, or the other holder's name (masked on your payments to others)."""
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Transaction:
        """One line of an account's history; declined attempts have no `balance_after`
        and say why in `decline_reason`."""
        r = _Reader(data, "transaction")
        return cls(
            id=r.text("id"),
            kind=r.text("kind"),
            amount=r.integer("amount"),
            balance_after=r.opt_integer("balance_after"),
            status=r.text("status"),
            created_at=r.opt_datetime("created_at"),
            description=r.opt_text("description"),
            currency=r.opt_text("currency"),
            counterparty_account_number=r.opt_text("counterparty_account_number"),
            decline_reason=r.opt_text("decline_reason"),
            reversed_entry_id=r.opt_text("reversed_entry_id"),
            counterparty_name=r.opt_text("counterparty_name"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Reversal:
    """A reversal (staff) or card refund (network): a new entry giving back (part of)
    `reversed_entry_id`, from `source_account_id` back to `target_account_id`."""

    id: str
    kind: str
    status: str
    reversed_entry_id: str
    amount: int
    currency: str
    created_at: dt.datetime | None
    idempotency_key: str | None
    replayed: bool
    source_account_id: str | None = None
    target_account_id: str | None = None
    refunded_amount: int | None = None
    raw: JSON = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class LimitChange:
    """The answer to `set_daily_limit`: the account with its new limit (applied at once),
    or, for a raise above the bank's default, the pending approval (`kind`
    `daily_limit_raise`) a second admin decides."""

    account: Account | None
    approval: JSON | None

    @property
    def pending(self) -> bool:
        return self.approval is not None


def _limit_change(response: httpx.Response) -> LimitChange:
    if response.status_code == 202:
        return LimitChange(account=None, approval=_Reader(_json(response), "approval").data)
    return LimitChange(account=Account.from_json(_json(response)), approval=None)


def _reversal(response: httpx.Response) -> Reversal:
    r = _Reader(_json(response), "reversal")
    return Reversal(
        id=r.text("id"),
        kind=r.text("kind"),
        status=r.text("status"),
        reversed_entry_id=r.text("reversed_entry_id"),
        amount=r.integer("amount"),
        currency=r.text("currency"),
        created_at=r.opt_datetime("created_at"),
        idempotency_key=response.request.headers.get("idempotency-key"),
        replayed=_replayed(response),
        source_account_id=r.opt_text("source_account_id"),
        target_account_id=r.opt_text("target_account_id") or r.opt_text("account_id"),
        refunded_amount=r.opt_integer("refunded_amount"),
        raw=r.data,
    )


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    status: str
    amount: int | None
    decline_reason: str | None
    idempotency_key: str | None
    replayed: bool
    raw: JSON = field(default_factory=dict, repr=False)


def _authorization(response: httpx.Response) -> Authorization:
    return _authorization_from_json(
        _json(response),
        idempotency_key=response.request.headers.get("idempotency-key"),
        replayed=_replayed(response),
    )


def _authorization_from_json(
    data: Any, *, idempotency_key: str | None = None, replayed: bool = False
) -> Authorization:
    r = _Reader(data, "card authorization")
    return Authorization(
        id=r.text("id"),
        status=r.text("status"),
        amount=r.opt_integer("amount"),
        decline_reason=r.opt_text("decline_reason"),
        idempotency_key=idempotency_key,
        replayed=replayed,
        raw=r.data,
    )
