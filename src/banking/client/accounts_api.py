"""The operations of a customer's own banking: health, sign-up and sessions, the
holder's profile, accounts and balances, deposits, withdrawals and transfers, payees,
scheduled transfers and the transaction list."""

from __future__ import annotations

import datetime as dt
from collections.abc import (
    Callable,
    Iterable,
    Mapping,
)
from typing import (
    Any,
    Literal,
)

from banking.client.errors import BankingError
from banking.client.models import (
    Account,
    AccountLookup,
    Balance,
    BalanceHistory,
    Holder,
    Payee,
    ScheduledTransfer,
    Session,
    Tokens,
    User,
)
from banking.client.movements import Movement, Transaction, TransferBatch, _batch, _movement
from banking.client.operations import _body, _key, _transactions_call, operation, paginated
from banking.client.parsing import JSON, Page, _no_content, _parse_list, _parse_with, _raw_json
from banking.client.transport import Call, _ClientCore, _refresh_call


class _AccountsApi(_ClientCore):
    """Identity, accounts, money movements, payees, schedules and transactions."""

    # -- health and identity

    @operation
    def health(self) -> Call[JSON]:
        """Readiness: `{"status": "ok", "checks": {...}}`; a 503 raises `ServerError`."""
        return Call("GET", "/v1/health/ready", _raw_json, auth="none")

    @operation
    def signup(
        self,
        email: str,
        password: str,
        *,
        first_name: str,
        last_name: str,
        date_of_birth: dt.date | str,
        phone: str | None = None,
    ) -> Call[User]:
        born = date_of_birth.isoformat() if isinstance(date_of_birth, dt.date) else date_of_birth
        body = _body(
            email=email,
            password=password,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=born,
            phone=phone,
        )
        return Call(
            "POST",
            "/v1/auth/signup",
            _parse_with(User.from_json),
            json=body,
            auth="none",
            expect=frozenset({201}),
        )

    @operation
    def login(self, email: str, password: str) -> Call[Tokens]:
        """Log in; the client keeps the tokens and refreshes them as needed."""
        return Call(
            "POST",
            "/v1/auth/login",
            _parse_with(Tokens.from_json),
            json={"email": email, "password": password},
            auth="none",
            expect=frozenset({200}),
            effect="store_tokens",
        )

    @operation
    def refresh(self, refresh_token: str | None = None) -> Call[Tokens]:
        """Rotate the refresh token now (normally done automatically)."""
        token = refresh_token or self._tokens.refresh_token
        if token is None:
            raise BankingError("no refresh token: log in first")
        return _refresh_call(token)

    @operation
    def logout(self) -> Call[None]:
        return Call("POST", "/v1/auth/logout", _no_content, effect="clear_tokens")

    @operation
    def logout_all(self) -> Call[None]:
        return Call("POST", "/v1/auth/logout-all", _no_content, effect="clear_tokens")

    @operation
    def change_password(self, current_password: str, new_password: str) -> Call[None]:
        body = {"current_password": current_password, "new_password": new_password}
        return Call("POST", "/v1/auth/password", _no_content, json=body)

    @operation
    def me(self) -> Call[User]:
        return Call("GET", "/v1/auth/me", _parse_with(User.from_json))

    @operation
    def holder(self) -> Call[Holder]:
        """The caller's account-holder profile (404 `NotFound` for staff without one)."""
        return Call("GET", "/v1/account-holders/me", _parse_with(Holder.from_json))

    @operation
    def update_holder(
        self,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        phone: str | None = None,
        address: Mapping[str, str] | None = None,
    ) -> Call[Holder]:
        body = _body(
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            address=dict(address) if address is not None else None,
        )
        return Call("PATCH", "/v1/account-holders/me", _parse_with(Holder.from_json), json=body)

    @operation
    def sessions(self) -> Call[list[Session]]:
        return Call("GET", "/v1/auth/sessions", _parse_list(Session.from_json, "sessions"))

    @operation
    def revoke_session(self, session_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/auth/sessions/{session_id}", _no_content)

    # -- accounts

    @operation
    def open_account(
        self, type: Literal["checking", "savings"] = "checking", currency: str = "USD"
    ) -> Call[Account]:
        return Call(
            "POST",
            "/v1/accounts",
            _parse_with(Account.from_json),
            json={"type": type, "currency": currency},
            expect=frozenset({201}),
        )

    @operation
    def list_accounts(self) -> Call[list[Account]]:
        """The caller's accounts, oldest first."""
        return Call("GET", "/v1/accounts", _parse_list(Account.from_json, "accounts"))

    @operation
    def all_balances(self) -> Call[list[Balance]]:
        """Every one of the caller's balances, read in one consistent snapshot."""
        return Call("GET", "/v1/balances", _parse_list(Balance.from_json, "balances"))

    @operation
    def rename_account(self, account_id: str, nickname: str | None) -> Call[Account]:
        return Call(
            "PATCH",
            f"/v1/accounts/{account_id}",
            _parse_with(Account.from_json),
            json={"nickname": nickname},
        )

    @operation
    def close_account(self, account_id: str) -> Call[Account]:
        return Call("POST", f"/v1/accounts/{account_id}/close", _parse_with(Account.from_json))

    @operation
    def get_account(self, account_id: str) -> Call[Account]:
        return Call("GET", f"/v1/accounts/{account_id}", _parse_with(Account.from_json))

    @operation
    def balance(
        self, account_id: str, *, verify: bool = False, at: dt.datetime | None = None
    ) -> Call[Balance]:
        """The balance now, or at the instant `at` (with its time zone: a naive time is
        refused here, as the server would refuse it)."""
        params: dict[str, str | int | bool] = {"verify": "true"} if verify else {}
        if at is not None:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("`at` needs a time zone, e.g. datetime.now(UTC)")
            params["at"] = at.isoformat()
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/balance",
            _parse_with(Balance.from_json),
            params=params,
        )

    @operation
    def balance_history(
        self, account_id: str, *, date_from: dt.date | None = None, date_to: dt.date | None = None
    ) -> Call[BalanceHistory]:
        """The closing balance of each day from `date_from` to `date_to` (at most 366; by
        default the last 90 days, ending the bank's today)."""
        params = {
            name: day.isoformat()
            for name, day in (("from", date_from), ("to", date_to))
            if day is not None
        }
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/balance-history",
            _parse_with(BalanceHistory.from_json),
            params=params,
        )

    @operation
    def lookup_account(self, number: str) -> Call[AccountLookup]:
        """Who an account number belongs to (masked), to confirm a payee before sending."""
        return Call(
            "GET",
            "/v1/accounts/lookup",
            _parse_with(AccountLookup.from_json),
            params={"number": number},
        )

    # -- money movements

    @operation
    def deposit(
        self,
        account_id: str,
        amount: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/deposits",
            _movement,
            json=_body(amount=amount, description=description),
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def withdraw(
        self,
        account_id: str,
        amount: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/withdrawals",
            _movement,
            json=_body(amount=amount, description=description),
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def transfer(
        self,
        source_account_id: str,
        amount: int,
        *,
        target_account_id: str | None = None,
        target_account_number: str | None = None,
        payee_id: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Movement]:
        """Move money to one of your accounts (by id), anyone's (by account number) or
        one of your payees (`payee_id`)."""
        if sum(t is not None for t in (target_account_id, target_account_number, payee_id)) != 1:
            raise ValueError(
                "give exactly one of target_account_id, target_account_number and payee_id"
            )
        body = _body(
            source_account_id=source_account_id,
            target_account_id=target_account_id,
            target_account_number=target_account_number,
            payee_id=payee_id,
            amount=amount,
            description=description,
        )
        return Call(
            "POST",
            "/v1/transfers",
            _movement,
            json=body,
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def transfer_batch(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        mode: Literal["all_or_nothing", "independent"] = "independent",
        idempotency_key: str | None = None,
    ) -> Call[TransferBatch]:
        """Up to 1,000 transfers (each a dict like the body of `transfer`) in one request
        and one Idempotency-Key. An all_or_nothing batch with a refused item raises
        `BatchRejected` (its body names `failed_item_index` and `reason`)."""
        return Call(
            "POST",
            "/v1/transfer-batches",
            _batch,
            json={"mode": mode, "items": [dict(item) for item in items]},
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    # -- payees

    @operation
    def add_payee(
        self, name: str, account_number: str, *, nickname: str | None = None
    ) -> Call[Payee]:
        return Call(
            "POST",
            "/v1/payees",
            _parse_with(Payee.from_json),
            json=_body(name=name, account_number=account_number, nickname=nickname),
            expect=frozenset({201}),
        )

    @operation
    def list_payees(self) -> Call[list[Payee]]:
        return Call("GET", "/v1/payees", _parse_list(Payee.from_json, "payees"))

    @operation
    def get_payee(self, payee_id: str) -> Call[Payee]:
        return Call("GET", f"/v1/payees/{payee_id}", _parse_with(Payee.from_json))

    @operation
    def update_payee(
        self, payee_id: str, *, name: str | None = None, nickname: str | None = None
    ) -> Call[Payee]:
        return Call(
            "PATCH",
            f"/v1/payees/{payee_id}",
            _parse_with(Payee.from_json),
            json=_body(name=name, nickname=nickname),
        )

    @operation
    def delete_payee(self, payee_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/payees/{payee_id}", _no_content)

    # -- scheduled and standing transfers

    @operation
    def schedule_transfer(
        self,
        source_account_id: str,
        amount: int,
        *,
        first_run_at: dt.datetime,
        frequency: Literal["once", "daily", "weekly", "monthly"] = "once",
        target_account_id: str | None = None,
        target_account_number: str | None = None,
        payee_id: str | None = None,
        description: str | None = None,
        count: int | None = None,
        until: dt.datetime | None = None,
    ) -> Call[ScheduledTransfer]:
        """A one-off transfer at `first_run_at`, or a standing order from then on."""
        body = _body(
            source_account_id=source_account_id,
            target_account_id=target_account_id,
            target_account_number=target_account_number,
            payee_id=payee_id,
            amount=amount,
            description=description,
            first_run_at=first_run_at.isoformat(),
            frequency=frequency,
            count=count,
            until=until.isoformat() if until is not None else None,
        )
        return Call(
            "POST",
            "/v1/scheduled-transfers",
            _parse_with(ScheduledTransfer.from_json),
            json=body,
            expect=frozenset({201}),
        )

    @operation
    def list_scheduled_transfers(self) -> Call[list[ScheduledTransfer]]:
        return Call(
            "GET",
            "/v1/scheduled-transfers",
            _parse_list(ScheduledTransfer.from_json, "scheduled transfers"),
        )

    @operation
    def get_scheduled_transfer(self, schedule_id: str) -> Call[ScheduledTransfer]:
        return Call(
            "GET",
            f"/v1/scheduled-transfers/{schedule_id}",
            _parse_with(ScheduledTransfer.from_json),
        )

    @operation
    def update_scheduled_transfer(
        self,
        schedule_id: str,
        *,
        amount: int | None = None,
        description: str | None = None,
        next_run_at: dt.datetime | None = None,
    ) -> Call[ScheduledTransfer]:
        body = _body(
            amount=amount,
            description=description,
            next_run_at=next_run_at.isoformat() if next_run_at is not None else None,
        )
        return Call(
            "PATCH",
            f"/v1/scheduled-transfers/{schedule_id}",
            _parse_with(ScheduledTransfer.from_json),
            json=body,
        )

    @operation
    def cancel_scheduled_transfer(self, schedule_id: str) -> Call[ScheduledTransfer]:
        return Call(
            "POST",
            f"/v1/scheduled-transfers/{schedule_id}/cancel",
            _parse_with(ScheduledTransfer.from_json),
        )

    @operation
    def transactions_page(
        self,
        /,
        account_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        **filters: str | int,
    ) -> Call[Page[Transaction]]:
        """One page of an account's history; filters such as `status="declined"`,
        `min_amount=500`, `max_amount=10_000`, `q="rent"`, `counterparty="<number>"`."""
        return _transactions_call(account_id, limit, cursor, filters)

    @paginated
    def transactions(
        self, /, account_id: str, *, limit: int = 50, **filters: str | int
    ) -> Callable[[str | None], Call[Page[Transaction]]]:
        """Every matching entry of an account's history, fetching pages as needed."""
        return lambda cursor: _transactions_call(account_id, limit, cursor, filters)
