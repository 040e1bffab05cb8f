"""Payments: deposits, withdrawals and transfers, on top of the ledger.

Guarantees: a member moves money only out of their own accounts (any other id is 404);
each request is one journal entry posted or declined by `banking.ledger`, committed before
the answer; every request carries an Idempotency-Key (the routes refuse one without), its
answer (success or decline) is stored in the same commit and replayed for retries, so a
retried request never moves money twice (`banking ledger verify`, step
`idempotency_entry`, checks that a stored answer names its entry).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from banking.accounts import numbers
from banking.accounts import service as accounts
from banking.approvals import service as approvals
from banking.core import idempotency
from banking.core.config import Settings
from banking.core.db import Database
from banking.core.deps import ClientInfo
from banking.core.errors import problem
from banking.core.idempotency import Claim, StoredResponse
from banking.core.logging import current_request_id
from banking.core.metrics import MONEY_MOVEMENTS
from banking.identity.service import Principal
from banking.ledger import history
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.payees import service as payees
from banking.payments.schemas import DepositIn, EntryOut, TransferIn, TransferOut, WithdrawalIn


@dataclass(frozen=True, slots=True)
class MovementResponse:
    status: int
    body: bytes
    replayed: bool


def _problem_body(decline: ledger.Declined, entry_id: uuid.UUID, request_id: str | None) -> bytes:
    response = problem(
        decline.status,
        decline.code,
        decline.title,
        decline.detail,
        request_id=request_id,
        entry_id=str(entry_id),
    )
    return bytes(response.body)


def _json(model: Any) -> bytes:
    data: bytes = model.model_dump_json().encode()
    return data


async def _run(
    db: Database,
    *,
    resolve: ledger.Resolve,
    kind: EntryKind,
    principal: Principal,
    key: str,
    path: str,
    body: dict[str, Any],
) -> MovementResponse:
    """Run the whole request (ownership reads, idempotency, the movement) as one ledger job."""
    claim = Claim(
        scope=idempotency.user_scope(principal.user_id),
        key=key,
        fingerprint=idempotency.fingerprint(
            "POST", path, body, key=idempotency.fingerprint_key(db.settings)
        ),
    )
    with idempotency.IN_FLIGHT.hold(claim):
        result = await ledger.execute(db, resolve, claim=claim)
    return _respond(kind, result)


def _respond(kind: EntryKind, result: ledger.Result) -> MovementResponse:
    assert result.response is not None
    if result.outcome is not None:
        MONEY_MOVEMENTS.labels(kind.value, result.outcome.status.value).inc()
    return MovementResponse(result.response.status, result.response.body, result.replayed)


def _decline_response(outcome: ledger.Outcome, request_id: str | None) -> StoredResponse | None:
    if outcome.decline is None:
        return None
    return StoredResponse(
        outcome.decline.status, _problem_body(outcome.decline, outcome.entry_id, request_id)
    )


def _cash_movement(
    *,
    kind: EntryKind,
    principal: Principal,
    account_id: uuid.UUID,
    amount_minor: int,
    description: str | None,
    idempotency_key: str | None,
    client: ClientInfo,
) -> ledger.Resolve:
    """A deposit (cash in) or withdrawal (cash out) on one of the caller's accounts."""
    request_id = current_request_id()
    sign = 1 if kind is EntryKind.deposit else -1

    def render(outcome: ledger.Outcome) -> StoredResponse:
        declined = _decline_response(outcome, request_id)
        if declined is not None:
            return declined
        movement = outcome.movement
        out = EntryOut(
            id=outcome.entry_id,
            kind=movement.kind.value,
            status=outcome.status.value,
            account_id=account_id,
            amount=sign * movement.amount_minor,
            currency=movement.currency,
            balance_after=outcome.balances_after[account_id],
            description=movement.description,
            created_at=outcome.created_at,
        )
        return StoredResponse(201, _json(out))

    def resolve(connection: Connection) -> tuple[ledger.Movement, ledger.Render]:
        account, locked = ledger.lock_own_account_sync(
            connection, owner_id=principal.user_id, account_id=account_id
        )
        cash = ledger.cash_account_id(account.currency)
        movement = ledger.Movement(
            kind=kind,
            source_account_id=cash if sign > 0 else account.id,
            target_account_id=account.id if sign > 0 else cash,
            origin_account_id=account.id,
            amount_minor=amount_minor,
            currency=account.currency,
            description=description,
            initiator_id=principal.user_id,
            idempotency_key=idempotency_key,
            client=client,
            locked=locked,
        )
        return movement, render

    return resolve


async def deposit(
    db: Database,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: DepositIn,
    idempotency_key: str,
    client: ClientInfo,
) -> MovementResponse:
    return await _cash(
        db,
        EntryKind.deposit,
        "deposits",
        principal=principal,
        account_id=account_id,
        request=request,
        idempotency_key=idempotency_key,
        client=client,
    )


async def withdraw(
    db: Database,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: WithdrawalIn,
    idempotency_key: str,
    client: ClientInfo,
) -> MovementResponse:
    return await _cash(
        db,
        EntryKind.withdrawal,
        "withdrawals",
        principal=principal,
        account_id=account_id,
        request=request,
        idempotency_key=idempotency_key,
        client=client,
    )


async def _cash(
    db: Database,
    kind: EntryKind,
    collection: str,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: DepositIn | WithdrawalIn,
    idempotency_key: str,
    client: ClientInfo,
) -> MovementResponse:
    """A deposit or a withdrawal: cash in or out of one of the caller's accounts."""
    resolve = _cash_movement(
        kind=kind,
        principal=principal,
        account_id=account_id,
        amount_minor=request.amount,
        description=request.description,
        idempotency_key=idempotency_key,
        client=client,
    )
    return await _run(
        db,
        resolve=resolve,
        kind=kind,
        principal=principal,
        key=idempotency_key,
        path=f"/v1/accounts/{account_id}/{collection}",
        body=request.model_dump(mode="json"),
    )


def transfer_resolve(
    *,
    principal: Principal,
    request: TransferIn,
    idempotency_key: str | None,
    client: ClientInfo | None,
    settings: Settings,
    clock: Callable[[], dt.datetime],
    request_id: str | None,
    description: str | None = None,
) -> ledger.Resolve:
    """A transfer's `resolve` for the ledger: the caller's source; the target by id (one
    of the caller's accounts), by number (any customer account) or by payee (the caller's,
    with the new-payee control). Used by single transfers, batches and schedules."""
    named: dict[str, accounts.AccountRef] = {}

    def render(outcome: ledger.Outcome) -> StoredResponse:
        declined = _decline_response(outcome, request_id)
        if declined is not None:
            return declined
        return StoredResponse(201, _json(transfer_out(outcome, named["target"], principal)))

    def resolve(connection: Connection) -> tuple[ledger.Movement, ledger.Render]:
        target_number = request.target_account_number
        decline: ledger.Declined | None = None
        if request.payee_id is not None:
            # A payee is the caller's own (others' ids are 404); its account by number.
            payee = payees.get_for_transfer_sync(
                connection, owner_id=principal.user_id, payee_id=request.payee_id
            )
            target_number = payee.account_number
            decline = payees.new_payee_decline(
                settings, payee, amount_minor=request.amount, now=clock()
            )
        # A target by id only among the caller's own accounts (other ids are 404); by
        # number, any customer account. Both are locked here for the ledger.
        source, target, locked = ledger.lock_transfer_accounts_sync(
            connection,
            owner_id=principal.user_id,
            source_id=request.source_account_id,
            target_id=request.target_account_id,
            target_number=target_number,
        )
        named["target"] = target
        movement = ledger.Movement(
            kind=EntryKind.transfer,
            source_account_id=source.id,
            target_account_id=target.id,
            origin_account_id=source.id,
            amount_minor=request.amount,
            currency=source.currency,
            description=description if description is not None else request.description,
            initiator_id=principal.user_id,
            idempotency_key=idempotency_key,
            client=client,
            locked=locked,
            decline=decline,
        )
        return movement, render

    return resolve


def transfer_out(
    outcome: ledger.Outcome, target: accounts.AccountRef, principal: Principal
) -> TransferOut:
    movement = outcome.movement
    return TransferOut(
        id=outcome.entry_id,
        kind=movement.kind.value,
        status=outcome.status.value,
        source_account_id=movement.source_account_id,
        target_account_id=target.id if target.owner_id == principal.user_id else None,
        target_account_number=numbers.mask(target.number) or "",
        amount=movement.amount_minor,
        currency=movement.currency,
        balance_after=outcome.balances_after[movement.source_account_id],
        description=movement.description,
        created_at=outcome.created_at,
    )


async def transfer(
    db: Database,
    *,
    principal: Principal,
    request: TransferIn,
    idempotency_key: str,
    client: ClientInfo,
) -> MovementResponse:
    if request.amount > approvals.lowest_threshold(db.settings):
        # Above a threshold: held and waiting for a second person (202), unless the
        # account's threshold allows it or the ledger would decline it anyway.
        requested = await approvals.request_transfer(
            db,
            principal=principal,
            request=request,
            idempotency_key=idempotency_key,
            client=client,
        )
        if requested is not None:
            return MovementResponse(requested.status, requested.body, requested.replayed)
    resolve = transfer_resolve(
        principal=principal,
        request=request,
        idempotency_key=idempotency_key,
        client=client,
        settings=db.settings,
        clock=db.clock,
        request_id=current_request_id(),
    )
    return await _run(
        db,
        resolve=resolve,
        kind=EntryKind.transfer,
        principal=principal,
        key=idempotency_key,
        path="/v1/transfers",
        body=transfer_fingerprint_body(request),
    )


def transfer_fingerprint_body(request: TransferIn) -> dict[str, Any]:
    """The body a transfer's key is bound to; without `payee_id` when it is not used, so
    fingerprints of transfers stored before payees existed still match their retries."""
    body = request.model_dump(mode="json")
    if body.get("payee_id") is None:
        body.pop("payee_id", None)
    return body


def account_history_sync(
    connection: Connection,
    principal: Principal,
    *,
    account_id: uuid.UUID,
    filters: history.HistoryFilters,
) -> tuple[list[history.HistoryItem], str | None]:
    """The caller's account history (404 for anyone else's account)."""
    accounts.check_owned_sync(connection, principal, account_id=account_id)
    return history.account_history_sync(
        connection, account_id=account_id, filters=filters, viewer_id=principal.user_id
    )
