"""The operations around the accounts: cards and the card network's authorizations,
four-eyes approvals, staff work (reversals, freezes, limits, admin lists, audit), events and
webhook endpoints, and statements."""

from __future__ import annotations

from collections.abc import (
    Iterable,
    Sequence,
)
from typing import (
    Any,
    Literal,
)

from banking.client.models import Account, AuditEvent, Card, Holder, IssuedCard, Statement
from banking.client.movements import (
    Authorization,
    LimitChange,
    Reversal,
    _authorization,
    _authorization_from_json,
    _limit_change,
    _reversal,
)
from banking.client.operations import _body, _key, operation
from banking.client.parsing import (
    JSON,
    Page,
    _bytes,
    _no_content,
    _parse_list,
    _parse_page,
    _parse_with,
    _Reader,
    _text,
)
from banking.client.transport import Call, _ClientCore


class _ServicesApi(_ClientCore):
    """Cards, approvals, staff operations, events and webhooks, statements."""

    # -- cards

    @operation
    def issue_card(
        self, account_id: str, type: Literal["virtual", "physical"] = "virtual"
    ) -> Call[IssuedCard]:
        return Call(
            "POST",
            f"/v1/accounts/{account_id}/cards",
            _parse_with(IssuedCard.from_json),
            json={"type": type},
            expect=frozenset({201}),
        )

    @operation
    def list_cards(self, *, limit: int = 100) -> Call[list[Card]]:
        return Call(
            "GET", "/v1/cards", _parse_list(Card.from_json, "cards"), params={"limit": limit}
        )

    @operation
    def freeze_card(self, card_id: str) -> Call[Card]:
        return Call("POST", f"/v1/cards/{card_id}/freeze", _parse_with(Card.from_json))

    @operation
    def unfreeze_card(self, card_id: str) -> Call[Card]:
        return Call("POST", f"/v1/cards/{card_id}/unfreeze", _parse_with(Card.from_json))

    @operation
    def set_card_limits(
        self,
        card_id: str,
        *,
        per_transaction: int | None = None,
        daily: int | None = None,
        remove: Iterable[Literal["per_transaction", "daily"]] = (),
    ) -> Call[Card]:
        """Spending limits in the card's minor units: None leaves a limit unchanged, a name
        in `remove` takes that limit away."""
        body: JSON = _body(per_transaction_limit=per_transaction, daily_limit=daily)
        for name in remove:
            body[f"{name}_limit"] = None
        return Call("PATCH", f"/v1/cards/{card_id}/limits", _parse_with(Card.from_json), json=body)

    @operation
    def card_authorizations(
        self, card_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Call[Page[Authorization]]:
        """One page of the card's payments (authorizations), newest first."""
        params: dict[str, str | int | bool] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return Call(
            "GET",
            f"/v1/cards/{card_id}/authorizations",
            _parse_page(_authorization_from_json, "card authorizations"),
            params=params,
        )

    @operation
    def authorize_card(
        self,
        *,
        card_number: str,
        exp_month: int,
        exp_year: int,
        cvv: str,
        amount: int,
        currency: str,
        merchant_name: str,
        merchant_category: str,
        idempotency_key: str | None = None,
    ) -> Call[Authorization]:
        """A card payment as the card network sends it (needs `network_key`). A decline
        raises `Declined` (or a subclass) when the server answers with an error status."""
        body = {
            "card_number": card_number,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "cvv": cvv,
            "amount": amount,
            "currency": currency,
            "merchant_name": merchant_name,
            "merchant_category": merchant_category,
        }
        return Call(
            "POST",
            "/v1/card-authorizations",
            _authorization,
            json=body,
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def capture_authorization(
        self, authorization_id: str, amount: int, *, idempotency_key: str | None = None
    ) -> Call[Authorization]:
        return Call(
            "POST",
            f"/v1/card-authorizations/{authorization_id}/capture",
            _authorization,
            json={"amount": amount},
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def void_authorization(
        self, authorization_id: str, *, idempotency_key: str | None = None
    ) -> Call[Authorization]:
        return Call(
            "POST",
            f"/v1/card-authorizations/{authorization_id}/void",
            _authorization,
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({200, 201}),
        )

    @operation
    def refund_authorization(
        self,
        authorization_id: str,
        amount: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Call[Reversal]:
        """Refund a captured card payment, whole (no `amount`) or in part (network only);
        refunds beyond the capture raise `Conflict` (`already_reversed`)."""
        return Call(
            "POST",
            f"/v1/card-authorizations/{authorization_id}/refund",
            _reversal,
            json=_body(amount=amount),
            auth="network",
            idempotency_key=_key(idempotency_key),
            expect=frozenset({201}),
        )

    # -- four-eyes approvals

    @operation
    def approvals_page(
        self, /, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[JSON]]:
        """Staff: the approval queue (`status`, `kind`, `account_id`, `older_than_s`);
        members: their own requests. A transfer above the approval threshold answers 202
        with one of these (`Movement.status == "pending_approval"`, `raw` holds the
        request)."""
        params: dict[str, str | int | bool] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        return Call(
            "GET",
            "/v1/approvals",
            _parse_page(lambda item: _Reader(item, "approval").data, "approvals"),
            params=params,
        )

    @operation
    def approve(self, approval_id: str, *, reason: str | None = None) -> Call[JSON]:
        """Admin (never the maker nor the member whose money it is): execute the request
        once. Raises `Conflict` (`self_approval`, `approval_not_pending`, `approval_expired`)."""
        return Call(
            "POST",
            f"/v1/approvals/{approval_id}/approve",
            _parse_with(lambda item: _Reader(item, "approval").data),
            json=_body(reason=reason),
        )

    @operation
    def reject(self, approval_id: str, reason: str) -> Call[JSON]:
        """Admin: refuse the request with a reason; its hold is released."""
        return Call(
            "POST",
            f"/v1/approvals/{approval_id}/reject",
            _parse_with(lambda item: _Reader(item, "approval").data),
            json={"reason": reason},
        )

    # -- staff (support and admin)

    @operation
    def reverse_entry(
        self,
        entry_id: str,
        reason: str,
        *,
        amount: int | None = None,
        idempotency_key: str | None = None,
    ) -> Call[Reversal]:
        """Admin only: ask to give back a posted entry, whole (no `amount`) or in part. The
        answer is a pending approval (`kind` `entry_reversal`, `status`
        `pending_approval`, `id` the approval's) that a second admin approves with
        `approve`. Beyond what is left of the entry: `AlreadyReversed`."""
        return Call(
            "POST",
            f"/v1/admin/entries/{entry_id}/reverse",
            _reversal,
            json=_body(reason=reason, amount=amount),
            idempotency_key=_key(idempotency_key),
            expect=frozenset({201, 202}),
        )

    @operation
    def admin_accounts_page(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: str | None = None,
        currency: str | None = None,
        owner_id: str | None = None,
        number: str | None = None,
    ) -> Call[Page[Account]]:
        """Accounts across the bank (staff), filtered; each carries `owner_id`."""
        params = _body(
            limit=limit,
            cursor=cursor,
            status=status,
            currency=currency,
            owner_id=owner_id,
            number=number,
        )
        return Call(
            "GET", "/v1/admin/accounts", _parse_page(Account.from_json, "accounts"), params=params
        )

    @operation
    def admin_account(self, account_id: str) -> Call[Account]:
        return Call("GET", f"/v1/admin/accounts/{account_id}", _parse_with(Account.from_json))

    @operation
    def freeze_account(self, account_id: str, *, reason: str | None = None) -> Call[Account]:
        """Admin only: outgoing money is declined `account_frozen` until unfrozen."""
        return Call(
            "POST",
            f"/v1/admin/accounts/{account_id}/freeze",
            _parse_with(Account.from_json),
            json=_body(reason=reason),
        )

    @operation
    def unfreeze_account(self, account_id: str, *, reason: str | None = None) -> Call[JSON]:
        """Admin only: ask to lift a freeze. The answer is a pending approval (`kind`
        `account_unfreeze`); the account stays frozen until a second admin `approve`s it.
        Not frozen: `AccountStatusConflict`; one already waiting: `Conflict`
        (`approval_already_pending`)."""
        return Call(
            "POST",
            f"/v1/admin/accounts/{account_id}/unfreeze",
            _parse_with(lambda item: _Reader(item, "approval").data),
            json=_body(reason=reason),
            expect=frozenset({202}),
        )

    @operation
    def set_daily_limit(
        self, account_id: str, daily_outgoing_limit: int | None, *, reason: str
    ) -> Call[LimitChange]:
        """Admin only: set an account's daily outgoing limit (None: the bank's default).
        Lowering it or staying at or below the default applies at once (`account`); a raise
        above the default is a pending approval (`approval`, `kind` `daily_limit_raise`)."""
        return Call(
            "PATCH",
            f"/v1/admin/accounts/{account_id}/limits",
            _limit_change,
            json={"daily_outgoing_limit": daily_outgoing_limit, "reason": reason},
            expect=frozenset({200, 202}),
        )

    @operation
    def admin_holders_page(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        email: str | None = None,
        name: str | None = None,
    ) -> Call[Page[Holder]]:
        params = _body(limit=limit, cursor=cursor, email=email, name=name)
        return Call(
            "GET",
            "/v1/admin/account-holders",
            _parse_page(Holder.from_json, "account holders"),
            params=params,
        )

    @operation
    def admin_transactions_page(
        self, /, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[JSON]]:
        """Journal entries across the bank (staff): `status`, `kind`, `account_id`, ..."""
        params: dict[str, str | int | bool] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        return Call(
            "GET",
            "/v1/admin/transactions",
            _parse_page(lambda item: _Reader(item, "entry").data, "entries"),
            params=params,
        )

    @operation
    def audit_page(
        self, /, *, limit: int = 50, cursor: str | None = None, **filters: str
    ) -> Call[Page[AuditEvent]]:
        """The audit log, newest first (admin only): `user`, `event_type`, `since`, `until`."""
        params: dict[str, str | int | bool] = {"limit": limit, **filters}
        if cursor is not None:
            params["cursor"] = cursor
        return Call(
            "GET",
            "/v1/admin/audit",
            _parse_page(AuditEvent.from_json, "audit events"),
            params=params,
        )

    # -- events and webhooks

    @operation
    def events_page(
        self,
        /,
        *,
        limit: int = 50,
        cursor: str | None = None,
        type: str | None = None,
        since: str | None = None,
        after: str | None = None,
        **filters: str,
    ) -> Call[Page[JSON]]:
        """Your events, oldest first (staff: everyone's; `owner_id`, `account_id`). Pass the
        last event id you processed as `after` to catch up."""
        params: dict[str, str | int | bool] = {
            "limit": limit,
            **_body(cursor=cursor, type=type, since=since, after=after),
            **filters,
        }
        return Call(
            "GET",
            "/v1/events",
            _parse_page(lambda item: _Reader(item, "event").data, "events"),
            params=params,
        )

    @operation
    def event(self, event_id: str) -> Call[JSON]:
        return Call(
            "GET", f"/v1/events/{event_id}", _parse_with(lambda d: _Reader(d, "event").data)
        )

    @operation
    def create_webhook_endpoint(
        self, url: str, event_types: Sequence[str] = ("*",), *, description: str | None = None
    ) -> Call[JSON]:
        """Register a webhook endpoint; the answer's `secret` is shown only here."""
        return Call(
            "POST",
            "/v1/webhook-endpoints",
            _parse_with(lambda d: _Reader(d, "webhook endpoint").data),
            json=_body(url=url, event_types=list(event_types), description=description),
        )

    @operation
    def webhook_endpoints_page(
        self, *, limit: int = 50, cursor: str | None = None
    ) -> Call[Page[JSON]]:
        return Call(
            "GET",
            "/v1/webhook-endpoints",
            _parse_page(lambda item: _Reader(item, "webhook endpoint").data, "webhook endpoints"),
            params=_body(limit=limit, cursor=cursor),
        )

    @operation
    def update_webhook_endpoint(self, endpoint_id: str, /, **changes: Any) -> Call[JSON]:
        """Change `url`, `event_types`, `description` or `status` (enabled/disabled)."""
        return Call(
            "PATCH",
            f"/v1/webhook-endpoints/{endpoint_id}",
            _parse_with(lambda d: _Reader(d, "webhook endpoint").data),
            json=changes,
        )

    @operation
    def delete_webhook_endpoint(self, endpoint_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/webhook-endpoints/{endpoint_id}", _no_content)

    @operation
    def rotate_webhook_secret(
        self, endpoint_id: str, *, grace_period_s: int | None = None
    ) -> Call[JSON]:
        """A new secret (in the answer, only there); the old one stays valid for the grace
        period."""
        return Call(
            "POST",
            f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            _parse_with(lambda d: _Reader(d, "webhook endpoint").data),
            json=_body(grace_period_s=grace_period_s),
        )

    @operation
    def webhook_deliveries_page(
        self,
        endpoint_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: str | None = None,
    ) -> Call[Page[JSON]]:
        return Call(
            "GET",
            f"/v1/webhook-endpoints/{endpoint_id}/deliveries",
            _parse_page(lambda item: _Reader(item, "delivery").data, "deliveries"),
            params=_body(limit=limit, cursor=cursor, status=status),
        )

    @operation
    def retry_webhook_delivery(self, endpoint_id: str, delivery_id: str) -> Call[None]:
        return Call(
            "POST",
            f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
            _no_content,
        )

    # -- statements

    @operation
    def statements(self, account_id: str) -> Call[list[JSON]]:
        """The months with a statement for the account."""
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/statements",
            _parse_list(lambda item: _Reader(item, "statement month").data, "statements"),
        )

    @operation
    def statement(self, account_id: str, month: str) -> Call[Statement]:
        """The statement for `month` (YYYY-MM); the current month is a statement to date."""
        return Call(
            "GET",
            f"/v1/accounts/{account_id}/statements/{month}",
            _parse_with(Statement.from_json),
            params={"format": "json"},
        )

    @operation
    def statement_csv(self, account_id: str, month: str) -> Call[str]:
        return Call(
            "GET", f"/v1/accounts/{account_id}/statements/{month}", _text, params={"format": "csv"}
        )

    @operation
    def statement_pdf(self, account_id: str, month: str) -> Call[bytes]:
        return Call(
            "GET", f"/v1/accounts/{account_id}/statements/{month}", _bytes, params={"format": "pdf"}
        )
