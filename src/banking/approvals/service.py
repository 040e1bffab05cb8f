"""Four-eyes approvals (maker-checker) for large transfers, reversals and staff actions
that lift a protection.

Guarantees: a member's transfer above the approval threshold of its currency (or the
higher threshold staff set on the source account) is not posted: it answers 202 with a
`pending_approval` request and holds the amount on the source (available balance drops,
balance does not), so it cannot be spent twice meanwhile. Only an admin who is neither
the maker nor the owner of the money approves or rejects it (409 `self_approval`).
Approval executes the transfer exactly once: the approval row is locked, its status
checked and changed in the same transaction as the ledger entry, and the ledger checks
funds, status and limits again at that moment (a decline is recorded, the hold released,
the approval `failed`). Rejection and expiry (`APPROVAL_TTL_S`) release the hold. Of two
decisions at once, one wins; the other is 409 `approval_not_pending`. Every step is
audited with both people. The hold is counted by `banking ledger verify`
(`held_matches_holds`).

Staff actions that lift a protection wait for a second admin the same way: unfreezing an
account (every account freeze is an admin's) and raising an account's daily outgoing limit
above the bank's default. Nothing is held; the account row is locked when one is asked
(one pending request of a kind per account) and again when it executes, where the account
is checked once more (still frozen; limit unchanged since it was asked, not closed) and
otherwise the approval is `failed` and nothing changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import numbers
from banking.accounts.models import Account, AccountStatus
from banking.approvals.models import Approval, ApprovalKind, ApprovalStatus, ApprovalThreshold
from banking.approvals.schemas import ApprovalOut
from banking.audit import service as audit
from banking.core import idempotency, reads
from banking.core.config import Settings
from banking.core.currencies import SUPPORTED_CURRENCIES
from banking.core.db import Database, database_of, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from banking.core.idempotency import Claim, StoredResponse
from banking.core.pagination import CURSOR_ERRORS, cursor_time, cursor_uuid
from banking.events import outbox
from banking.identity.models import Role
from banking.identity.service import Principal
from banking.ledger import approval_holds, reversals
from banking.ledger import cursor as cursors
from banking.ledger import service as ledger
from banking.ledger.models import EntryKind
from banking.ledger.writer import writer_for
from banking.payees import service as payees
from banking.payments.schemas import TransferIn

APPROVAL = cast(Table, Approval.__table__)
ACCOUNT = cast(Table, Account.__table__)
THRESHOLD = cast(Table, ApprovalThreshold.__table__)


class SelfApproval(Conflict):
    code = "self_approval"
    title = "The maker of a request, or the member whose money it is, cannot decide it."


class ApprovalNotPending(Conflict):
    code = "approval_not_pending"
    title = "The approval was already decided (executed, failed, rejected or expired)."


class ApprovalExpired(Conflict):
    code = "approval_expired"
    title = "The approval lapsed (APPROVAL_TTL_S) and its hold was released."


class ApprovalAlreadyPending(Conflict):
    code = "approval_already_pending"
    title = "A request of this kind for this account already waits for a second person."


class ThresholdBelowDefault(InvalidRequest):
    code = "threshold_below_default"
    title = "An account's approval threshold can only be raised above the bank's default."


class AdminOnly(Forbidden):
    code = "insufficient_role"
    title = "Only an admin may decide an approval."


def default_threshold(settings: Settings, currency: str) -> int:
    return settings.approval_thresholds_minor.get(currency, settings.approval_threshold_minor)


def lowest_threshold(settings: Settings) -> int:
    """No transfer at or below this amount can need an approval: the transfer path reads
    nothing more for it."""
    return min(default_threshold(settings, currency) for currency in SUPPORTED_CURRENCIES)


def threshold_sync(
    connection: Connection, settings: Settings, account_id: uuid.UUID, currency: str
) -> int:
    override = connection.execute(
        select(THRESHOLD.c.threshold_minor).where(THRESHOLD.c.account_id == account_id)
    ).scalar()
    default = default_threshold(settings, currency)
    return max(default, override) if override is not None else default


def _read_sync(connection: Connection, approval_id: uuid.UUID, *, lock: bool = False) -> Any:
    query = select(APPROVAL).where(APPROVAL.c.id == approval_id)
    return connection.execute(query.with_for_update() if lock else query).first()


def approval_out(row: Any) -> ApprovalOut:
    details = json.loads(row.details) if row.details else {}
    return ApprovalOut(
        id=row.id,
        kind=row.kind,
        status=row.status,
        maker_id=row.maker_id,
        owner_id=row.owner_id,
        source_account_id=row.source_account_id,
        target_account_id=row.target_account_id,
        target_account_number=details.get("target_account_number"),
        amount=row.amount_minor,
        currency=row.currency,
        held_amount=row.held_minor,
        description=row.description,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
        decline_reason=row.decline_reason,
        entry_id=row.entry_id,
        reversed_entry_id=details.get("reversed_entry_id"),
        daily_outgoing_limit=details.get("daily_outgoing_limit"),
        previous_daily_outgoing_limit=details.get("previous_daily_outgoing_limit"),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _event_sync(connection: Connection, event_type: str, row: Any) -> None:
    """`approval.<what>` (docs/events.md), shaped like the API's answer, for the member
    whose money it is (the maker for a staff-only one), in the change's transaction."""
    outbox.emit_sync(
        connection,
        type=event_type,
        owner_id=row.owner_id if row.owner_id is not None else row.maker_id,
        subject_type="approval",
        subject_id=row.id,
        account_id=row.source_account_id,
        data=approval_out(row).model_dump(mode="json"),
    )


def _answer(status: int, row: Any) -> StoredResponse:
    return StoredResponse(status, approval_out(row).model_dump_json().encode())


class _KeyTaken(Exception):
    """The key was stored meanwhile: roll back and replay."""


@dataclass(frozen=True, slots=True)
class Requested:
    status: int
    body: bytes
    replayed: bool


# -- the maker: a large transfer


async def request_transfer(
    db: Database,
    *,
    principal: Principal,
    request: TransferIn,
    idempotency_key: str,
    client: ClientInfo,
) -> Requested | None:
    """The 202 branch of `POST /v1/transfers`: hold the amount and ask for an approval.
    None when the transfer needs no approval (or would be declined anyway: the ordinary
    path then posts it or records its decline)."""
    settings = db.settings
    limits = ledger.Limits.from_settings(settings)
    claim = Claim(
        scope=idempotency.user_scope(principal.user_id),
        key=idempotency_key,
        fingerprint=idempotency.fingerprint(
            "POST",
            "/v1/transfers",
            request.model_dump(mode="json"),
            key=idempotency.fingerprint_key(settings),
        ),
    )

    def work(connection: Connection) -> Requested | None:
        now = db.clock()
        stored = idempotency.claim_sync(connection, claim, now=now)
        if stored is not None:
            answer = idempotency.replay(stored, claim)
            return Requested(answer.status, answer.body, replayed=True)
        target_number = request.target_account_number
        if request.payee_id is not None:
            # As the ordinary path (payments/service.py `transfer_resolve`): the caller's
            # payee (another's is 404), by its account number. A transfer the new-payee
            # limit refuses takes the ordinary path, which records the decline.
            payee = payees.get_for_transfer_sync(
                connection, owner_id=principal.user_id, payee_id=request.payee_id
            )
            if payees.new_payee_decline(settings, payee, amount_minor=request.amount, now=now):
                return None
            target_number = payee.account_number
        source, target, _locked = ledger.lock_transfer_accounts_sync(
            connection,
            owner_id=principal.user_id,
            source_id=request.source_account_id,
            target_id=request.target_account_id,
            target_number=target_number,
        )
        if source.id == target.id or request.amount <= threshold_sync(
            connection, settings, source.id, source.currency
        ):
            return None
        if target.currency != source.currency:
            return None
        decline, now = approval_holds.hold_sync(
            connection,
            account_id=source.id,
            amount_minor=request.amount,
            currency=source.currency,
            limits=limits,
            now=now,
        )
        if decline is not None:
            return None
        approval_id = uuid.uuid4()
        connection.execute(
            insert(APPROVAL).values(
                id=approval_id,
                kind=ApprovalKind.large_transfer.value,
                status=ApprovalStatus.pending_approval.value,
                maker_id=principal.user_id,
                owner_id=principal.user_id,
                source_account_id=source.id,
                target_account_id=target.id,
                amount_minor=request.amount,
                currency=source.currency,
                held_minor=request.amount,
                description=request.description,
                idempotency_key=idempotency_key,
                details=json.dumps({"target_account_number": numbers.mask(target.number)}),
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.approval_ttl_s),
            )
        )
        audit.record_sync(
            connection,
            event_type="approval.requested",
            actor_id=principal.user_id,
            target_type="approval",
            target_id=approval_id,
            client=client,
            occurred_at=now,
            details={
                "kind": ApprovalKind.large_transfer.value,
                "amount_minor": request.amount,
                "currency": source.currency,
                "source_account_id": source.id,
                "target_account_id": target.id,
            },
        )
        created = _read_sync(connection, approval_id)
        _event_sync(connection, "approval.requested", created)
        answer = _answer(202, created)
        if not idempotency.store_sync(
            connection, claim, answer, now=now, ttl_s=settings.idempotency_ttl_s
        ):
            raise _KeyTaken()
        return Requested(answer.status, answer.body, replayed=False)

    writer = writer_for(db)
    with idempotency.IN_FLIGHT.hold(claim):
        try:
            return await writer.run(work)
        except _KeyTaken:
            stored = await writer.read(
                lambda connection: idempotency.lookup_sync(connection, claim)
            )
            if stored is None:  # pragma: no cover - the record was there a moment ago
                raise idempotency.IdempotencyKeyInFlight() from None
            return Requested(stored.status, stored.body, replayed=True)


# -- the maker: a reversal by an admin


async def request_reversal(
    db: Database,
    *,
    principal: Principal,
    entry_id: uuid.UUID,
    amount_minor: int | None,
    reason: str,
    idempotency_key: str,
    client: ClientInfo,
) -> Requested:
    """An admin's reversal waits for a second admin (202). The entry must be reversible and
    the amount fit what is left now; the ledger checks the sum again when it executes."""
    settings = db.settings
    body = {"reason": reason, "amount": amount_minor}
    claim = Claim(
        scope=idempotency.user_scope(principal.user_id),
        key=idempotency_key,
        fingerprint=idempotency.fingerprint(
            "POST",
            f"/v1/admin/entries/{entry_id}/reverse",
            body,
            key=idempotency.fingerprint_key(settings),
        ),
    )

    def work(connection: Connection) -> Requested:
        now = db.clock()
        stored = idempotency.claim_sync(connection, claim, now=now)
        if stored is not None:
            answer = idempotency.replay(stored, claim)
            return Requested(answer.status, answer.body, replayed=True)
        original = reversals.read_original_sync(connection, entry_id)
        movement = reversals.reversal_movement(
            connection,
            original,
            kind=EntryKind.reversal,
            amount_minor=amount_minor,
            description=reason,
            initiator_id=principal.user_id,
            idempotency_key=None,
            client=client,
        )
        reversed_minor = ledger.reversed_sum_sync(connection, original.id)
        if reversed_minor + movement.amount_minor > original.amount_minor:
            raise ledger.AlreadyReversed(
                f"{reversed_minor} of {original.amount_minor} minor units are already reversed."
            )
        # The member whose money goes back or is taken back may not decide it either.
        owners = [
            owner
            for owner in connection.execute(
                select(ACCOUNT.c.owner_id).where(
                    ACCOUNT.c.id.in_([movement.source_account_id, movement.target_account_id])
                )
            ).scalars()
            if owner is not None
        ]
        approval_id = uuid.uuid4()
        connection.execute(
            insert(APPROVAL).values(
                id=approval_id,
                kind=ApprovalKind.entry_reversal.value,
                status=ApprovalStatus.pending_approval.value,
                maker_id=principal.user_id,
                owner_id=owners[0] if owners else None,
                source_account_id=movement.source_account_id,
                target_account_id=movement.target_account_id,
                amount_minor=movement.amount_minor,
                currency=movement.currency,
                held_minor=0,
                description=reason,
                idempotency_key=idempotency_key,
                details=json.dumps({"reversed_entry_id": str(original.id)}),
                created_at=now,
                expires_at=now + dt.timedelta(seconds=settings.approval_ttl_s),
            )
        )
        audit.record_sync(
            connection,
            event_type="approval.requested",
            actor_id=principal.user_id,
            target_type="approval",
            target_id=approval_id,
            client=client,
            occurred_at=now,
            details={
                "kind": ApprovalKind.entry_reversal.value,
                "amount_minor": movement.amount_minor,
                "currency": movement.currency,
                "reversed_entry_id": original.id,
            },
        )
        created = _read_sync(connection, approval_id)
        _event_sync(connection, "approval.requested", created)
        answer = _answer(202, created)
        if not idempotency.store_sync(
            connection, claim, answer, now=now, ttl_s=settings.idempotency_ttl_s
        ):
            raise _KeyTaken()
        return Requested(answer.status, answer.body, replayed=False)

    writer = writer_for(db)
    with idempotency.IN_FLIGHT.hold(claim):
        try:
            return await writer.run(work)
        except _KeyTaken:
            stored = await writer.read(
                lambda connection: idempotency.lookup_sync(connection, claim)
            )
            if stored is None:  # pragma: no cover - the record was there a moment ago
                raise idempotency.IdempotencyKeyInFlight() from None
            return Requested(stored.status, stored.body, replayed=True)


# -- the maker: staff actions that lift a protection


def _lock_account_sync(connection: Connection, account_id: uuid.UUID) -> Any:
    """A customer account, its row locked (PostgreSQL; SQLite's writer runs alone)."""
    row = connection.execute(
        select(ACCOUNT)
        .where(ACCOUNT.c.id == account_id, ACCOUNT.c.is_internal.is_(False))
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound("No such account.")
    return row


def _refuse_second_request_sync(
    connection: Connection, *, account_id: uuid.UUID, kind: ApprovalKind, now: dt.datetime
) -> None:
    """One live request of a kind per account (the account row is locked, so two requests
    at once take turns). A lapsed one is left to the approvals job: it can never execute,
    and expiring it here would lock an approval row after the account's, the opposite of
    a decision's order."""
    pending = connection.execute(
        select(APPROVAL.c.id).where(
            APPROVAL.c.source_account_id == account_id,
            APPROVAL.c.kind == kind.value,
            APPROVAL.c.status == ApprovalStatus.pending_approval.value,
            APPROVAL.c.expires_at > now,
        )
    ).scalar()
    if pending is not None:
        raise ApprovalAlreadyPending(f"Approval {pending} waits for a decision.")


def _request_staff_action_sync(
    connection: Connection,
    *,
    kind: ApprovalKind,
    account: Any,
    principal: Principal,
    amount_minor: int,
    reason: str | None,
    details: dict[str, Any],
    settings: Settings,
    now: dt.datetime,
    client: ClientInfo,
) -> Any:
    approval_id = uuid.uuid4()
    connection.execute(
        insert(APPROVAL).values(
            id=approval_id,
            kind=kind.value,
            status=ApprovalStatus.pending_approval.value,
            maker_id=principal.user_id,
            # Staff-only: the member is told by the account's own event once it executes.
            owner_id=None,
            source_account_id=account.id,
            target_account_id=account.id,
            amount_minor=amount_minor,
            currency=account.currency,
            held_minor=0,
            description=reason,
            idempotency_key=None,
            details=json.dumps({"target_account_number": numbers.mask(account.number), **details}),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.approval_ttl_s),
        )
    )
    audit.record_sync(
        connection,
        event_type="approval.requested",
        actor_id=principal.user_id,
        target_type="approval",
        target_id=approval_id,
        client=client,
        occurred_at=now,
        details={"kind": kind.value, "account_id": account.id, "reason": reason, **details},
    )
    created = _read_sync(connection, approval_id)
    _event_sync(connection, "approval.requested", created)
    return created


async def request_unfreeze(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    reason: str | None,
    client: ClientInfo,
) -> ApprovalOut:
    """Ask to lift an account's freeze (admin): a pending `account_unfreeze` approval; the
    account stays frozen until a second admin approves. Not frozen: 409
    `account_status_conflict`; one already pending: 409 `approval_already_pending`."""
    from banking.accounts import service as accounts

    await session.rollback()
    db = database_of(session)

    def work(connection: Connection) -> Any:
        now = db.clock()
        account = _lock_account_sync(connection, account_id)
        if account.status != AccountStatus.frozen.value:
            raise accounts.AccountStatusConflict("Only a frozen account can be unfrozen.")
        _refuse_second_request_sync(
            connection, account_id=account.id, kind=ApprovalKind.account_unfreeze, now=now
        )
        return _request_staff_action_sync(
            connection,
            kind=ApprovalKind.account_unfreeze,
            account=account,
            principal=principal,
            amount_minor=0,
            reason=reason,
            details={},
            settings=db.settings,
            now=now,
            client=client,
        )

    return approval_out(await writer_for(db).run(work))


async def change_daily_limit(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    limit_minor: int | None,
    reason: str,
    client: ClientInfo,
) -> ApprovalOut | None:
    """Set an account's daily outgoing limit (admin). At or below the bank's default, or a
    lowering, applies at once (None is returned); above both it is a pending
    `daily_limit_raise` approval, applied when a second admin approves. None for
    `limit_minor` returns the account to the bank's default."""
    from banking.accounts import service as accounts

    await session.rollback()
    db = database_of(session)
    default = db.settings.daily_outgoing_limit_minor

    def work(connection: Connection) -> Any:
        now = db.clock()
        account = _lock_account_sync(connection, account_id)
        if account.status == AccountStatus.closed.value:
            raise accounts.AccountAlreadyClosed()
        current = account.daily_outgoing_limit_minor or default
        if limit_minor is None or limit_minor <= default or limit_minor <= current:
            accounts.set_daily_limit_sync(
                connection,
                account_id=account.id,
                limit_minor=limit_minor,
                default_limit_minor=default,
                actor_id=principal.user_id,
                reason=reason,
                client=client,
                now=now,
                details={"previous_daily_outgoing_limit_minor": account.daily_outgoing_limit_minor},
            )
            return None
        _refuse_second_request_sync(
            connection, account_id=account.id, kind=ApprovalKind.daily_limit_raise, now=now
        )
        return _request_staff_action_sync(
            connection,
            kind=ApprovalKind.daily_limit_raise,
            account=account,
            principal=principal,
            amount_minor=limit_minor,
            reason=reason,
            details={
                "daily_outgoing_limit": limit_minor,
                "previous_daily_outgoing_limit": current,
                # The stored value (None: the default), compared again when it executes.
                "previous_limit_minor": account.daily_outgoing_limit_minor,
            },
            settings=db.settings,
            now=now,
            client=client,
        )

    created = await writer_for(db).run(work)
    return approval_out(created) if created is not None else None


@dataclass(frozen=True, slots=True)
class _Executed:
    """What an approval's execution did: the entry (money kinds) or the decline."""

    entry_id: uuid.UUID | None
    decline_reason: str | None


def _execute_staff_action_sync(
    connection: Connection,
    row: Any,
    *,
    principal: Principal,
    settings: Settings,
    now: dt.datetime,
    client: ClientInfo,
) -> _Executed:
    """Apply an approved staff action if the account is still as it was asked; otherwise
    the approval fails with the reason and nothing changes."""
    from banking.accounts import service as accounts

    account = _lock_account_sync(connection, row.source_account_id)
    if account.status == AccountStatus.closed.value:
        return _Executed(None, "account_closed")
    people = {"maker_id": row.maker_id, "checker_id": principal.user_id, "approval_id": row.id}
    if row.kind == ApprovalKind.account_unfreeze.value:
        if account.status != AccountStatus.frozen.value:
            return _Executed(None, "account_not_frozen")
        accounts.unfreeze_sync(
            connection,
            account_id=account.id,
            checker_id=principal.user_id,
            maker_id=row.maker_id,
            approval_id=row.id,
            reason=row.description,
            client=client,
        )
        return _Executed(None, None)
    details = json.loads(row.details)
    if account.daily_outgoing_limit_minor != details["previous_limit_minor"]:
        # Someone changed the limit since (perhaps lowered it on purpose): not undone here.
        return _Executed(None, "limit_changed")
    accounts.set_daily_limit_sync(
        connection,
        account_id=account.id,
        limit_minor=details["daily_outgoing_limit"],
        default_limit_minor=settings.daily_outgoing_limit_minor,
        actor_id=principal.user_id,
        reason=row.description,
        client=client,
        now=now,
        details={
            **people,
            "previous_daily_outgoing_limit_minor": account.daily_outgoing_limit_minor,
        },
    )
    return _Executed(None, None)


_STAFF_ACTIONS = frozenset(
    {ApprovalKind.account_unfreeze.value, ApprovalKind.daily_limit_raise.value}
)


# -- the checker


def _expire_sync(connection: Connection, row: Any, now: dt.datetime, actor: Any) -> None:
    if row.held_minor:
        approval_holds.release_sync(
            connection,
            account_id=row.source_account_id,
            amount_minor=row.held_minor,
            placed_on=row.created_at.date(),
            now=now,
        )
    connection.execute(
        update(APPROVAL)
        .where(APPROVAL.c.id == row.id)
        .values(status=ApprovalStatus.expired.value, held_minor=0, decided_at=now)
    )
    audit.record_sync(
        connection,
        event_type="approval.expired",
        actor_id=actor,
        target_type="approval",
        target_id=row.id,
        occurred_at=now,
        details={"maker_id": row.maker_id, "released_minor": row.held_minor},
    )
    _event_sync(connection, "approval.expired", _read_sync(connection, row.id))


def _decide_sync(
    connection: Connection,
    *,
    approval_id: uuid.UUID,
    principal: Principal,
    approve: bool,
    reason: str | None,
    settings: Settings,
    now: dt.datetime,
    client: ClientInfo,
) -> Any:
    # The row's lock makes two decisions at once take turns: the second sees the first's.
    row = _read_sync(connection, approval_id, lock=True)
    if row is None:
        raise NotFound("No such approval.")
    # The members whose money it is: the owners of both accounts.
    parties = {row.maker_id, row.owner_id} | set(
        connection.execute(
            select(ACCOUNT.c.owner_id).where(
                ACCOUNT.c.id.in_([row.source_account_id, row.target_account_id])
            )
        ).scalars()
    )
    # A member who is no party to it does not see it (404, as for every id).
    if not principal.is_staff and principal.user_id not in parties:
        raise NotFound("No such approval.")
    if principal.user_id in parties:
        raise SelfApproval()
    if principal.role is not Role.admin:
        raise AdminOnly()
    if row.status != ApprovalStatus.pending_approval.value:
        raise ApprovalNotPending(f"The approval is {row.status}.")
    if row.expires_at <= now:
        _expire_sync(connection, row, now, principal.user_id)
        return ApprovalExpired()
    values: dict[str, Any] = {"decided_by": principal.user_id, "decided_at": now, "reason": reason}
    event: dict[str, Any] = {"maker_id": row.maker_id, "checker_id": principal.user_id}
    executed: _Executed | None = None
    if approve and row.kind in _STAFF_ACTIONS:
        executed = _execute_staff_action_sync(
            connection, row, principal=principal, settings=settings, now=now, client=client
        )
    elif approve:
        if row.kind == ApprovalKind.entry_reversal.value:
            original = reversals.read_original_sync(
                connection, uuid.UUID(json.loads(row.details)["reversed_entry_id"])
            )
            movement = reversals.reversal_movement(
                connection,
                original,
                kind=EntryKind.reversal,
                amount_minor=row.amount_minor,
                description=row.description,
                initiator_id=row.maker_id,
                idempotency_key=None,
                client=client,
            )
            result = ledger.post_sync(
                connection, movement, limits=ledger.Limits.from_settings(settings), now=now
            )
        else:
            result = approval_holds.execute_transfer_sync(
                connection,
                source_account_id=row.source_account_id,
                target_account_id=row.target_account_id,
                amount_minor=row.amount_minor,
                currency=row.currency,
                held_minor=row.held_minor,
                placed_on=row.created_at.date(),
                limits=ledger.Limits.from_settings(settings),
                now=now,
                description=row.description,
                initiator_id=row.maker_id,
                client=client,
            )
        outcome = result.outcome
        assert outcome is not None
        if outcome.posted:
            executed = _Executed(outcome.entry_id, None)
        else:
            assert outcome.decline is not None
            executed = _Executed(outcome.entry_id, outcome.decline.reason)
    if executed is not None:
        values["entry_id"] = executed.entry_id
        values["held_minor"] = 0
        if executed.decline_reason is None:
            values["status"] = ApprovalStatus.executed.value
        else:
            values["status"] = ApprovalStatus.failed.value
            values["decline_reason"] = executed.decline_reason
            event["reason"] = executed.decline_reason
        event["entry_id"] = executed.entry_id
        event_type = "approval.approved"
    else:
        if row.held_minor:
            approval_holds.release_sync(
                connection,
                account_id=row.source_account_id,
                amount_minor=row.held_minor,
                placed_on=row.created_at.date(),
                now=now,
            )
        values.update(status=ApprovalStatus.rejected.value, held_minor=0)
        event_type = "approval.rejected"
    connection.execute(update(APPROVAL).where(APPROVAL.c.id == approval_id).values(values))
    audit.record_sync(
        connection,
        event_type=event_type,
        outcome="success" if values["status"] != ApprovalStatus.failed.value else "declined",
        actor_id=principal.user_id,
        target_type="approval",
        target_id=approval_id,
        client=client,
        occurred_at=now,
        details={**event, "status": values["status"], "amount_minor": row.amount_minor},
    )
    decided = _read_sync(connection, approval_id)
    if values["status"] == ApprovalStatus.failed.value:
        event_type = "approval.failed"
    _event_sync(connection, event_type, decided)
    return decided


async def decide(
    session: AsyncSession,
    *,
    approval_id: uuid.UUID,
    principal: Principal,
    approve: bool,
    reason: str | None,
    client: ClientInfo,
) -> ApprovalOut:
    """Approve (execute) or reject a pending approval (admin, never the maker or owner)."""
    await session.rollback()
    db = database_of(session)
    result = await writer_for(db).run(
        lambda connection: _decide_sync(
            connection,
            approval_id=approval_id,
            principal=principal,
            approve=approve,
            reason=reason,
            settings=db.settings,
            now=db.clock(),
            client=client,
        )
    )
    if isinstance(result, ApprovalExpired):
        # The expiry (hold released) is committed; the decision is refused.
        raise result
    return approval_out(result)


async def expire_due(db: Database) -> int:
    """Expire every pending approval past its lifetime, releasing its hold. Returns how
    many (the approvals job; also done by a decision on a lapsed one)."""
    now = db.clock()
    writer = writer_for(db)
    due = await writer.read(
        lambda connection: list(
            connection.execute(
                select(APPROVAL.c.id).where(
                    APPROVAL.c.status == ApprovalStatus.pending_approval.value,
                    APPROVAL.c.expires_at <= now,
                )
            ).scalars()
        )
    )

    def expire(connection: Connection, *, approval_id: uuid.UUID) -> int:
        row = _read_sync(connection, approval_id, lock=True)
        if row is None or row.status != ApprovalStatus.pending_approval.value:
            return 0
        _expire_sync(connection, row, now, None)
        return 1

    expired = 0
    for approval_id in due:
        expired += await writer.run(functools.partial(expire, approval_id=approval_id))
    return expired


# -- reads


@dataclass(frozen=True, slots=True)
class ApprovalFilters:
    status: str | None = None
    kind: str | None = None
    account_id: uuid.UUID | None = None
    older_than_s: int | None = None
    limit: int = 50
    cursor: str | None = None


def list_approvals_sync(
    connection: Connection, *, principal: Principal, filters: ApprovalFilters, now: dt.datetime
) -> tuple[Sequence[Row[Any]], str | None]:
    """Staff: the queue (every approval); members: their own requests. Newest first;
    `older_than_s` counts back from `now`."""
    query = (
        select(APPROVAL)
        .order_by(APPROVAL.c.created_at.desc(), APPROVAL.c.id.desc())
        .limit(filters.limit + 1)
    )
    if not principal.is_staff:
        query = query.where(APPROVAL.c.owner_id == principal.user_id)
    if filters.status:
        query = query.where(APPROVAL.c.status == filters.status)
    if filters.kind:
        query = query.where(APPROVAL.c.kind == filters.kind)
    if filters.account_id:
        query = query.where(
            or_(
                APPROVAL.c.source_account_id == filters.account_id,
                APPROVAL.c.target_account_id == filters.account_id,
            )
        )
    if filters.older_than_s is not None:
        query = query.where(
            APPROVAL.c.created_at <= now - dt.timedelta(seconds=filters.older_than_s)
        )
    if filters.cursor:
        position = cursors.decode(filters.cursor, kind="approvals")
        try:
            created_at = cursor_time(position["t"])
            approval_id = cursor_uuid(position["i"])
        except CURSOR_ERRORS as exc:
            raise cursors.InvalidCursor() from exc
        query = query.where(
            or_(
                APPROVAL.c.created_at < created_at,
                and_(APPROVAL.c.created_at == created_at, APPROVAL.c.id < approval_id),
            )
        )
    rows = connection.execute(query).all()
    next_cursor = None
    if len(rows) > filters.limit:
        last = rows[filters.limit - 1]
        next_cursor = cursors.encode(
            {"k": "approvals", "t": last.created_at.isoformat(), "i": str(last.id)}
        )
    return rows[: filters.limit], next_cursor


_BY_ID = select(*APPROVAL.c).where(APPROVAL.c.id == bindparam("approval_id"))


def get_approval_sync(
    connection: Connection, *, principal: Principal, approval_id: uuid.UUID
) -> ApprovalOut:
    """One approval: the caller's own, or any for staff (404 otherwise)."""
    row = reads.first(connection, _BY_ID, {"approval_id": approval_id})
    if row is None or (not principal.is_staff and row.owner_id != principal.user_id):
        raise NotFound("No such approval.")
    return approval_out(row)


# -- thresholds


async def set_threshold(
    session: AsyncSession,
    *,
    principal: Principal,
    account_id: uuid.UUID,
    threshold_minor: int,
    client: ClientInfo,
) -> int:
    """Raise one account's approval threshold above its currency's default (admin)."""
    from banking.accounts import service as accounts

    db = database_of(session)
    async with write_transaction(session):
        account = await accounts.get_any(session, account_id=account_id)
        if threshold_minor < default_threshold(db.settings, account.currency):
            raise ThresholdBelowDefault()
        existing = await session.scalar(
            select(THRESHOLD.c.account_id).where(THRESHOLD.c.account_id == account_id)
        )
        values = {"threshold_minor": threshold_minor, "set_by": principal.user_id}
        if existing is None:
            await session.execute(insert(THRESHOLD).values(account_id=account_id, **values))
        else:
            await session.execute(
                update(THRESHOLD).where(THRESHOLD.c.account_id == account_id).values(values)
            )
        await audit.record(
            session,
            event_type="approval.threshold_set",
            actor_id=principal.user_id,
            target_type="account",
            target_id=account_id,
            client=client,
            details={"threshold_minor": threshold_minor},
        )
    return threshold_minor
