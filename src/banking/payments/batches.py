"""Batch transfers: up to 1,000 transfers in one request, under one Idempotency-Key.

Guarantees: the whole batch runs as one job of the ledger's writer, in one database
transaction, each item through the same `resolve` and `ledger.execute_sync` as
`POST /v1/transfers` (so the same ownership checks, rules, declines and audit rows). The
batch's answer is stored under its Idempotency-Key in that same transaction, so a retry
replays it and never posts an item twice.

- `all_or_nothing`: the items run inside a SAVEPOINT; at the first item that is declined
  (or names an unknown account or payee) the SAVEPOINT is rolled back, so none posts; the
  refused item is then recorded as a declined entry (when the ledger refused it) and the
  answer (`batch_rejected`) names it and the reason.
- `independent`: each item posts or is declined (and recorded) on its own; the answer
  lists every item's result.

Checked by tests/integration/test_transfer_batches.py on both databases.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from banking.core import idempotency
from banking.core.db import Database
from banking.core.deps import ClientInfo
from banking.core.errors import DomainError, problem
from banking.core.idempotency import Claim, StoredResponse
from banking.core.logging import current_request_id
from banking.core.metrics import MONEY_MOVEMENTS
from banking.identity.service import Principal
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.ledger.writer import writer_for
from banking.payees import service as payees
from banking.payments import service as payments
from banking.payments.schemas import (
    BatchItemOut,
    BatchMode,
    TransferBatchIn,
    TransferBatchOut,
    TransferOut,
)

PATH = "/v1/transfer-batches"


class _KeyTaken(Exception):
    """The batch's key was stored meanwhile: roll back and replay that answer."""


@dataclass(slots=True)
class _Tried:
    index: int
    outcome: ledger.Outcome | None
    response: StoredResponse | None
    error: DomainError | None


def _item_out(tried: _Tried, *, rolled_back: bool) -> BatchItemOut:
    if tried.error is not None:
        return BatchItemOut(
            index=tried.index, status="not_posted", code=tried.error.code, detail=tried.error.detail
        )
    assert tried.outcome is not None
    assert tried.response is not None
    body = json.loads(tried.response.body)
    if tried.outcome.posted:
        if rolled_back:
            return BatchItemOut(
                index=tried.index,
                status="not_posted",
                code="batch_rejected",
                detail="Another item of this all_or_nothing batch was declined.",
            )
        return BatchItemOut(
            index=tried.index, status="posted", transfer=TransferOut.model_validate(body)
        )
    return BatchItemOut(
        index=tried.index, status="declined", code=body.get("code"), detail=body.get("detail")
    )


def _try_item(
    connection: Connection,
    index: int,
    resolve: ledger.Resolve,
    *,
    limits: ledger.Limits,
    db: Database,
) -> _Tried:
    try:
        result = ledger.execute_sync(connection, resolve, limits=limits, clock=db.clock)
    except ledger.LedgerInvariantError:
        raise
    except DomainError as error:
        # Raised by the item's resolve (unknown account or payee) before any write.
        return _Tried(index, None, None, error)
    return _Tried(index, result.outcome, result.response, None)


async def transfer_batch(
    db: Database,
    *,
    principal: Principal,
    request: TransferBatchIn,
    idempotency_key: str,
    client: ClientInfo,
) -> payments.MovementResponse:
    settings = db.settings
    limits = ledger.Limits.from_settings(settings)
    request_id = current_request_id()
    batch_id = uuid.uuid4()
    body = {
        "mode": request.mode.value,
        "items": [payments.transfer_fingerprint_body(item) for item in request.items],
    }
    claim = Claim(
        scope=idempotency.user_scope(principal.user_id),
        key=idempotency_key,
        fingerprint=idempotency.fingerprint(
            "POST", PATH, body, key=idempotency.fingerprint_key(settings)
        ),
    )

    def resolve_item(index: int, decline: ledger.Declined | None = None) -> ledger.Resolve:
        resolve = payments.transfer_resolve(
            principal=principal,
            request=request.items[index],
            idempotency_key=f"batch:{batch_id}:{index}",
            client=client,
            settings=settings,
            clock=db.clock,
            request_id=request_id,
        )
        if decline is None:
            return resolve

        def declined(connection: Connection) -> tuple[ledger.Movement, ledger.Render]:
            movement, render = resolve(connection)
            assert render is not None
            # Recorded with the reason it was refused for inside the rolled-back batch.
            return dataclasses.replace(movement, decline=decline), render

        return declined

    def work(connection: Connection) -> tuple[StoredResponse, bool, list[_Tried]]:
        now = db.clock()
        stored = idempotency.claim_sync(connection, claim, now=now)
        if stored is not None:
            return idempotency.replay(stored, claim), True, []
        _lock_all(connection, principal, request)
        tried: list[_Tried] = []
        failed: _Tried | None = None
        all_or_nothing = request.mode is BatchMode.all_or_nothing
        savepoint = connection.begin_nested() if all_or_nothing else None
        for index in range(len(request.items)):
            item = _try_item(connection, index, resolve_item(index), limits=limits, db=db)
            tried.append(item)
            if all_or_nothing and (
                item.error is not None or (item.outcome is not None and not item.outcome.posted)
            ):
                failed = item
                break
        if savepoint is not None:
            if failed is None:
                savepoint.commit()
            else:
                savepoint.rollback()
        if failed is not None:
            if failed.outcome is not None and failed.outcome.decline is not None:
                # The refusal is recorded, like a single transfer's, after the rollback.
                failed = _try_item(
                    connection,
                    failed.index,
                    resolve_item(failed.index, failed.outcome.decline),
                    limits=limits,
                    db=db,
                )
                tried[-1] = failed
            response = _rejected(batch_id, request, tried, failed, request_id)
        else:
            out = TransferBatchOut(
                id=batch_id,
                mode=request.mode.value,
                status="completed",
                posted=sum(1 for item in tried if item.outcome and item.outcome.posted),
                declined=sum(1 for item in tried if not (item.outcome and item.outcome.posted)),
                items=[_item_out(item, rolled_back=False) for item in tried],
            )
            response = StoredResponse(201, out.model_dump_json().encode())
        if not idempotency.store_sync(
            connection, claim, response, now=now, ttl_s=settings.idempotency_ttl_s
        ):
            raise _KeyTaken()
        return response, False, tried

    writer = writer_for(db)
    with idempotency.IN_FLIGHT.hold(claim):
        try:
            response, replayed, tried = await writer.run(work)
        except _KeyTaken:
            stored = await writer.read(
                lambda connection: idempotency.lookup_sync(connection, claim)
            )
            if stored is None:  # pragma: no cover - the record was there a moment ago
                raise idempotency.IdempotencyKeyInFlight() from None
            return payments.MovementResponse(stored.status, stored.body, True)
    for item in tried:
        if item.outcome is not None:
            MONEY_MOVEMENTS.labels(EntryKind.transfer.value, item.outcome.status.value).inc()
    return payments.MovementResponse(response.status, response.body, replayed)


def _lock_all(connection: Connection, principal: Principal, request: TransferBatchIn) -> None:
    """Every account of the batch locked up front, in id order (see `ledger.lock_many_sync`):
    without it, two batches with accounts in common deadlock on PostgreSQL."""
    items = request.items
    ids = [item.source_account_id for item in items]
    ids += [item.target_account_id for item in items if item.target_account_id is not None]
    numbers = [item.target_account_number for item in items if item.target_account_number]
    payee_ids = [item.payee_id for item in items if item.payee_id is not None]
    numbers += payees.numbers_of_sync(connection, owner_id=principal.user_id, payee_ids=payee_ids)
    ledger.lock_many_sync(connection, owner_id=principal.user_id, account_ids=ids, numbers=numbers)


def _rejected(
    batch_id: uuid.UUID,
    request: TransferBatchIn,
    tried: list[_Tried],
    failed: _Tried,
    request_id: str | None,
) -> StoredResponse:
    item = _item_out(failed, rolled_back=True)
    status = failed.error.status if failed.error is not None else 409
    if failed.outcome is not None and failed.outcome.decline is not None:
        status = failed.outcome.decline.status
    items = [_item_out(other, rolled_back=True) for other in tried[:-1]] + [item]
    response = problem(
        status,
        "batch_rejected",
        "An item of this all_or_nothing batch was refused: nothing was posted.",
        f"Item {failed.index} was refused: {item.code}.",
        request_id=request_id,
        batch_id=str(batch_id),
        mode=request.mode.value,
        failed_item_index=failed.index,
        reason=item.code,
        items=[out.model_dump(mode="json") for out in items],
    )
    return StoredResponse(status, bytes(response.body))
