"""The typed records the API returns (tokens, users and holders, sessions, accounts and
balances, payees, scheduled transfers, cards, statements, audit events), each read from
its JSON with `from_json`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import (
    Any,
)

from banking.client.errors import UnexpectedResponse
from banking.client.parsing import JSON, _Reader


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int

    @classmethod
    def from_json(cls, data: Any) -> Tokens:
        r = _Reader(data, "tokens")
        return cls(
            r.text("access_token"),
            r.text("refresh_token"),
            r.text("token_type"),
            r.integer("expires_in"),
        )


@dataclass(frozen=True, slots=True)
class Holder:
    """An account-holder profile (`/v1/account-holders/me`, or `profile` in `/v1/auth/me`)."""

    id: str
    user_id: str
    email: str
    first_name: str
    last_name: str
    date_of_birth: str
    phone: str | None
    address: JSON | None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Holder:
        r = _Reader(data, "account holder")
        return cls(
            id=r.text("id"),
            user_id=r.text("user_id"),
            email=r.text("email"),
            first_name=r.text("first_name"),
            last_name=r.text("last_name"),
            date_of_birth=r.text("date_of_birth"),
            phone=r.opt_text("phone"),
            address=r.obj("address"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class User:
    """A user (the sign-up answer), or with `profile` the answer of `/v1/auth/me`
    (staff created from the CLI have no profile)."""

    id: str
    email: str
    role: str
    created_at: dt.datetime | None = None
    profile: Holder | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> User:
        r = _Reader(data, "user")
        profile = r.obj("profile")
        return cls(
            id=r.text("id"),
            email=r.text("email"),
            role=r.text("role"),
            created_at=r.opt_datetime("created_at"),
            profile=Holder.from_json(profile) if profile is not None else None,
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    created_at: dt.datetime | None
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    ip: str | None
    user_agent: str | None
    current: bool

    @classmethod
    def from_json(cls, data: Any) -> Session:
        r = _Reader(data, "session")
        return cls(
            id=r.text("id"),
            created_at=r.opt_datetime("created_at"),
            last_used_at=r.opt_datetime("last_used_at"),
            expires_at=r.opt_datetime("expires_at"),
            ip=r.opt_text("ip"),
            user_agent=r.opt_text("user_agent"),
            current=r.flag("current"),
        )


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    number: str
    type: str
    currency: str
    status: str
    balance: int
    available_balance: int
    held: int = 0
    nickname: str | None = None
    daily_outgoing_limit: int | None = None
    created_at: dt.datetime | None = None
    owner_id: str | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Account:
        """An account as its owner sees it; the staff view adds `owner_id`."""
        r = _Reader(data, "account")
        return cls(
            id=r.text("id"),
            number=r.text("number"),
            type=r.text("type"),
            currency=r.text("currency"),
            status=r.text("status"),
            balance=r.integer("balance"),
            available_balance=r.integer("available_balance"),
            held=r.opt_integer("held") or 0,
            nickname=r.opt_text("nickname"),
            daily_outgoing_limit=r.opt_integer("daily_outgoing_limit"),
            created_at=r.opt_datetime("created_at"),
            owner_id=r.opt_text("owner_id"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Balance:
    balance: int
    available_balance: int
    currency: str
    held: int = 0
    account_id: str | None = None
    number: str | None = None
    computed_balance: int | None = None
    consistent: bool | None = None
    at: dt.datetime | None = None
    """With `at=`: the instant the figures are of."""

    @classmethod
    def from_json(cls, data: Any) -> Balance:
        """`/v1/accounts/{id}/balance` (with `?verify=true`: `computed_balance`,
        `consistent`; with `?at=`: `at`), or one item of `/v1/balances` (with `number`)."""
        r = _Reader(data, "balance")
        return cls(
            balance=r.integer("balance"),
            available_balance=r.integer("available_balance"),
            currency=r.text("currency"),
            held=r.opt_integer("held") or 0,
            account_id=r.opt_text("account_id"),
            number=r.opt_text("number"),
            computed_balance=r.opt_integer("computed_balance"),
            consistent=r.opt_flag("consistent"),
            at=r.opt_datetime("at"),
        )


@dataclass(frozen=True, slots=True)
class BalancePoint:
    date: dt.date
    balance: int
    """At the end of `date` in the bank's time zone (today: so far)."""


@dataclass(frozen=True, slots=True)
class BalanceHistory:
    account_id: str
    currency: str
    items: list[BalancePoint]

    @classmethod
    def from_json(cls, data: Any) -> BalanceHistory:
        """`/v1/accounts/{id}/balance-history`: one closing balance per day."""
        r = _Reader(data, "balance history")
        points = []
        for item in r.array("items"):
            point = _Reader(item, "balance point")
            try:
                day = dt.date.fromisoformat(point.text("date"))
            except ValueError as exc:
                raise UnexpectedResponse("balance point: 'date' is not a date") from exc
            points.append(BalancePoint(day, point.integer("balance")))
        return cls(r.text("account_id"), r.text("currency"), points)


@dataclass(frozen=True, slots=True)
class AccountLookup:
    """What a sender sees of a payee before confirming: never the full holder name."""

    number: str
    currency: str
    holder_name: str
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> AccountLookup:
        r = _Reader(data, "account lookup")
        return cls(r.text("number"), r.text("currency"), r.text("holder_name"), r.data)


@dataclass(frozen=True, slots=True)
class Payee:
    """A saved beneficiary: the holder's name is masked."""

    id: str
    name: str
    nickname: str | None
    account_number: str
    currency: str
    holder_name: str
    created_at: dt.datetime | None
    cooldown_ends_at: dt.datetime | None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Payee:
        r = _Reader(data, "payee")
        return cls(
            r.text("id"),
            r.text("name"),
            r.opt_text("nickname"),
            r.text("account_number"),
            r.text("currency"),
            r.text("holder_name"),
            r.opt_datetime("created_at"),
            r.opt_datetime("cooldown_ends_at"),
            r.data,
        )


@dataclass(frozen=True, slots=True)
class ScheduledTransfer:
    """A one-off or standing transfer; `runs` (newest first) on single-object answers."""

    id: str
    status: str
    source_account_id: str
    target_account_number: str
    amount: int
    currency: str
    frequency: str
    next_run_at: dt.datetime | None
    last_result: str | None
    last_reason: str | None
    description: str | None
    runs: list[JSON]
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> ScheduledTransfer:
        r = _Reader(data, "scheduled transfer")
        runs = r.data.get("runs") or []
        return cls(
            r.text("id"),
            r.text("status"),
            r.text("source_account_id"),
            r.text("target_account_number"),
            r.integer("amount"),
            r.text("currency"),
            r.text("frequency"),
            r.opt_datetime("next_run_at"),
            r.opt_text("last_result"),
            r.opt_text("last_reason"),
            r.opt_text("description"),
            [run for run in runs if isinstance(run, dict)],
            r.data,
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    occurred_at: dt.datetime | None
    event_type: str
    outcome: str
    actor_id: str | None
    target_type: str | None
    target_id: str | None
    details: JSON
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> AuditEvent:
        r = _Reader(data, "audit event")
        return cls(
            id=r.integer("id"),
            occurred_at=r.opt_datetime("occurred_at"),
            event_type=r.text("event_type"),
            outcome=r.text("outcome"),
            actor_id=r.opt_text("actor_id"),
            target_type=r.opt_text("target_type"),
            target_id=r.opt_text("target_id"),
            details=r.obj("details") or {},
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class Card:
    """A card as listed: never the full number nor the CVV. Limits are in minor units of
    `currency`; None means no limit."""

    id: str
    last4: str
    exp_month: int
    exp_year: int
    status: str
    type: str | None
    account_id: str | None = None
    currency: str | None = None
    per_transaction_limit: int | None = None
    daily_limit: int | None = None
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Card:
        r = _Reader(data, "card")
        return cls(
            id=r.text("id"),
            last4=r.text("last4"),
            exp_month=r.integer("exp_month"),
            exp_year=r.integer("exp_year"),
            status=r.text("status"),
            type=r.opt_text("type"),
            account_id=r.opt_text("account_id"),
            currency=r.opt_text("currency"),
            per_transaction_limit=r.opt_integer("per_transaction_limit"),
            daily_limit=r.opt_integer("daily_limit"),
            raw=r.data,
        )


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """The issuance answer: the only time the full PAN and CVV are shown."""

    card: Card
    pan: str = field(repr=False)
    cvv: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Any) -> IssuedCard:
        r = _Reader(data, "issued card")
        return cls(Card.from_json(data), r.text("pan"), r.text("cvv"))


@dataclass(frozen=True, slots=True)
class Statement:
    opening_balance: int
    closing_balance: int
    total_credits: int
    total_debits: int
    lines: list[JSON]
    pending_holds: list[JSON] = field(default_factory=list)
    raw: JSON = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Statement:
        r = _Reader(data, "statement")
        return cls(
            opening_balance=r.integer("opening_balance"),
            closing_balance=r.integer("closing_balance"),
            total_credits=r.integer("total_credits"),
            total_debits=r.integer("total_debits"),
            lines=r.array("lines"),
            pending_holds=r.array("pending_holds"),
            raw=r.data,
        )
