"""Payments: deposits, withdrawals and transfers, on top of the ledger.

Guarantees: a member moves money only out of their own accounts (any other id is 404);
each request is one journal entry posted or declined by `banking.ledger`, committed before
the answer; with an Idempotency-Key the answer (success or decline) is stored in the same
commit and replayed for retries, so a retried request never moves money twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import numbers
from banking.accounts import service as accounts
from banking.accounts.models import Account
from banking.core import idempotency
from banking.core.db import database_of
from banking.core.deps import ClientInfo
from banking.core.errors import NotFound, problem
from banking.core.idempotency import Claim, StoredResponse
from banking.core.logging import current_request_id
from banking.core.metrics import MONEY_MOVEMENTS
from banking.identity.service import Principal
from banking.ledger import history
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
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
    session: AsyncSession,
    *,
    movement: ledger.Movement,
    principal: Principal,
    key: str | None,
    path: str,
    body: dict[str, Any],
    render: ledger.Render,
) -> MovementResponse:
    # End the read transaction the auth check and ownership reads used: the movement runs
    # on its own connection, and nothing here may keep an old snapshot open.
    await session.rollback()
    db = database_of(session)
    if key is None:
        result = await ledger.post(db, movement, render=render)
        return _respond(movement, result)
    claim = Claim(
        scope=idempotency.user_scope(principal.user_id),
        key=key,
        fingerprint=idempotency.fingerprint("POST", path, body),
    )
    with idempotency.IN_FLIGHT.hold(claim):
        stored = await idempotency.lookup(session, claim)
        await session.rollback()
        if stored is not None:
            return MovementResponse(stored.status, stored.body, replayed=True)
        result = await ledger.post(db, movement, claim=claim, render=render)
    return _respond(movement, result)


def _respond(movement: ledger.Movement, result: ledger.Result) -> MovementResponse:
    assert result.response is not None
    if result.outcome is not None:
        MONEY_MOVEMENTS.labels(movement.kind.value, result.outcome.status.value).inc()
    return MovementResponse(result.response.status, result.response.body, result.replayed)


def _entry_renderer(account: Account, *, sign: int) -> ledger.Render:
    # Read now: after the session's rollback the ORM object is expired.
    account_id = account.id
    request_id = current_request_id()

    def render(outcome: ledger.Outcome) -> StoredResponse:
        if outcome.decline is not None:
            return StoredResponse(
                outcome.decline.status,
                _problem_body(outcome.decline, outcome.entry_id, request_id),
            )
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

    return render


async def deposit(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: DepositIn,
    idempotency_key: str | None,
    client: ClientInfo,
) -> MovementResponse:
    account = await accounts.get_owned(session, principal=principal, account_id=account_id)
    movement = ledger.Movement(
        kind=EntryKind.deposit,
        source_account_id=ledger.cash_account_id(account.currency),
        target_account_id=account.id,
        origin_account_id=account.id,
        amount_minor=request.amount,
        currency=account.currency,
        description=request.description,
        initiator_id=principal.user_id,
        idempotency_key=idempotency_key,
        client=client,
    )
    return await _run(
        session,
        movement=movement,
        principal=principal,
        key=idempotency_key,
        path=f"/v1/accounts/{account_id}/deposits",
        body=request.model_dump(mode="json"),
        render=_entry_renderer(account, sign=1),
    )


async def withdraw(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    request: WithdrawalIn,
    idempotency_key: str | None,
    client: ClientInfo,
) -> MovementResponse:
    account = await accounts.get_owned(session, principal=principal, account_id=account_id)
    movement = ledger.Movement(
        kind=EntryKind.withdrawal,
        source_account_id=account.id,
        target_account_id=ledger.cash_account_id(account.currency),
        origin_account_id=account.id,
        amount_minor=request.amount,
        currency=account.currency,
        description=request.description,
        initiator_id=principal.user_id,
        idempotency_key=idempotency_key,
        client=client,
    )
    return await _run(
        session,
        movement=movement,
        principal=principal,
        key=idempotency_key,
        path=f"/v1/accounts/{account_id}/withdrawals",
        body=request.model_dump(mode="json"),
        render=_entry_renderer(account, sign=-1),
    )


async def transfer(
    session: AsyncSession,
    *,
    principal: Principal,
    request: TransferIn,
    idempotency_key: str,
    client: ClientInfo,
) -> MovementResponse:
    source = await accounts.get_owned(
        session, principal=principal, account_id=request.source_account_id
    )
    if request.target_account_id is not None:
        target = await accounts.get_owned(
            session, principal=principal, account_id=request.target_account_id
        )
    else:
        assert request.target_account_number is not None
        found = await accounts.find_by_number(session, request.target_account_number)
        if found is None:
            raise NotFound("No account has this number.")
        target = found
    own_target = target.owner_id == principal.user_id
    target_id, target_number = target.id, target.number or ""
    request_id = current_request_id()

    def render(outcome: ledger.Outcome) -> StoredResponse:
        if outcome.decline is not None:
            return StoredResponse(
                outcome.decline.status,
                _problem_body(outcome.decline, outcome.entry_id, request_id),
            )
        movement = outcome.movement
        out = TransferOut(
            id=outcome.entry_id,
            kind=movement.kind.value,
            status=outcome.status.value,
            source_account_id=movement.source_account_id,
            target_account_id=target_id if own_target else None,
            target_account_number=numbers.mask(target_number) or "",
            amount=movement.amount_minor,
            currency=movement.currency,
            balance_after=outcome.balances_after[movement.source_account_id],
            description=movement.description,
            created_at=outcome.created_at,
        )
        return StoredResponse(201, _json(out))

    movement = ledger.Movement(
        kind=EntryKind.transfer,
        source_account_id=source.id,
        target_account_id=target_id,
        origin_account_id=source.id,
        amount_minor=request.amount,
        currency=source.currency,
        description=request.description,
        initiator_id=principal.user_id,
        idempotency_key=idempotency_key,
        client=client,
    )
    return await _run(
        session,
        movement=movement,
        principal=principal,
        key=idempotency_key,
        path="/v1/transfers",
        body=request.model_dump(mode="json"),
        render=render,
    )


async def account_history(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    filters: history.HistoryFilters,
) -> tuple[list[history.HistoryItem], str | None]:
    await accounts.get_owned(session, principal=principal, account_id=account_id)
    return await history.account_history(session, account_id=account_id, filters=filters)
