"""Scheduled and standing transfers.

Guarantees: a member sees and changes only their own schedules (anything else is 404).
Each occurrence is one ledger movement (`banking.ledger`, through the same `resolve` as
`POST /v1/transfers`) whose idempotency claim is deterministic: scope
`schedule:<schedule id>`, key `occurrence:<n>:attempt:<k>`. The run is recorded and the
schedule advanced in the same transaction as the movement, on a schedule row locked and
re-checked to be still due with the same occurrence and attempt, and at most one run row
exists per (schedule, occurrence, attempt) (a unique index). So a crash, a restart or two
schedulers racing can never execute an occurrence twice (tests/reliability/
test_schedule_crash.py, tests/integration/test_schedules.py on both databases). A
missed occurrence runs once when a scheduler next runs; later ones missed in the same
outage are merged into that run (`skipped`). A declined occurrence is recorded with its
reason and retried `SCHEDULE_RETRIES` times, `SCHEDULE_RETRY_INTERVAL_S` apart, then
marked failed; the schedule goes on with the next occurrence. Times follow the bank's time
zone (`BANK_TIMEZONE`, see `calendar.py`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncSession

from banking.accounts import numbers
from banking.accounts import service as accounts
from banking.accounts.models import Account, AccountStatus
from banking.audit import service as audit
from banking.core import reads
from banking.core.config import Settings
from banking.core.db import Database, write_transaction
from banking.core.deps import ClientInfo
from banking.core.errors import Conflict, DomainError, InvalidRequest, NotFound
from banking.core.idempotency import Claim
from banking.core.logging import get_logger
from banking.events import outbox
from banking.identity.models import Role
from banking.identity.service import Principal
from banking.ledger import service as ledger
from banking.ledger.writer import writer_for
from banking.payees import service as payees
from banking.payees.models import Payee
from banking.payments import service as payments
from banking.payments.schemas import TransferIn
from banking.schedules import calendar
from banking.schedules.models import (
    Frequency,
    RunStatus,
    ScheduledTransfer,
    ScheduledTransferRun,
    ScheduleStatus,
)
from banking.schedules.schemas import (
    ScheduledTransferIn,
    ScheduledTransferOut,
    ScheduledTransferUpdateIn,
    ScheduleRunOut,
)

log = get_logger("banking.schedules")
SCHEDULE = cast(Table, ScheduledTransfer.__table__)
RUN = cast(Table, ScheduledTransferRun.__table__)
PAYEE = cast(Table, Payee.__table__)
# A time given as "now" by a client is a little behind the server's clock by the time
# it arrives: this much in the past is still accepted.
PAST_TOLERANCE = dt.timedelta(seconds=60)
HISTORY_LIMIT = 100
# Occurrences run concurrently by one pass (PostgreSQL pool connections it may hold).
PARALLEL_RUNS = 4


class ScheduleInPast(InvalidRequest):
    code = "schedule_in_past"
    title = "The first (or next) run must not be in the past."


class InvalidSchedule(InvalidRequest):
    code = "invalid_schedule"
    title = "The end of the series does not fit its frequency or its start."


class ScheduleNotActive(Conflict):
    code = "schedule_not_active"
    title = "The scheduled transfer is completed or cancelled."


def timezone_of(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.bank_timezone)


def schedule_out(schedule: Any, runs: list[Any] | None = None) -> ScheduledTransferOut:
    """A schedule (`ScheduledTransfer`, or a row with its attribute names) and its runs."""
    finished = schedule.status != ScheduleStatus.active.value
    return ScheduledTransferOut(
        id=schedule.id,
        status=schedule.status,
        source_account_id=schedule.source_account_id,
        target_account_id=schedule.target_account_id if schedule.target_is_own else None,
        target_account_number=numbers.mask(schedule.target_account_number) or "",
        payee_id=schedule.payee_id,
        amount=schedule.amount_minor,
        currency=schedule.currency,
        description=schedule.description,
        frequency=schedule.frequency,
        first_run_at=schedule.first_run_at,
        count=schedule.count,
        until=schedule.until,
        next_occurrence=None if finished else schedule.next_occurrence,
        next_run_at=None if finished else schedule.next_run_at,
        last_run_at=schedule.last_run_at,
        last_result=schedule.last_status,
        last_reason=schedule.last_reason,
        created_at=schedule.created_at,
        runs=None if runs is None else [ScheduleRunOut.model_validate(run) for run in runs],
    )


async def _target(
    session: AsyncSession, *, principal: Principal, request: ScheduledTransferIn
) -> tuple[Account, uuid.UUID | None]:
    if request.target_account_id is not None:
        own = await accounts.get_owned(
            session, principal=principal, account_id=request.target_account_id
        )
        return own, None
    if request.payee_id is not None:
        payee = await payees.get_payee(session, principal=principal, payee_id=request.payee_id)
        account = await accounts.find_account(session, payee.account_id)
        if account is None:  # pragma: no cover - accounts are never deleted
            raise NotFound("No such account.")
        return account, payee.id
    assert request.target_account_number is not None
    account = await accounts.find_by_number(session, request.target_account_number)
    if account is None:
        raise NotFound("No account has this number.")
    return account, None


def _check_end(request: ScheduledTransferIn) -> None:
    if request.count is not None and request.until is not None:
        raise InvalidSchedule("Give count or until, not both.")
    if request.frequency is Frequency.once and (
        (request.count is not None and request.count != 1) or request.until is not None
    ):
        raise InvalidSchedule("A once transfer takes neither count nor until.")
    if request.until is not None and request.until < request.first_run_at:
        raise InvalidSchedule("until must not be before first_run_at.")


async def create_schedule(
    session: AsyncSession,
    *,
    principal: Principal,
    request: ScheduledTransferIn,
    client: ClientInfo,
    now: dt.datetime,
) -> ScheduledTransfer:
    if request.first_run_at < now - PAST_TOLERANCE:
        raise ScheduleInPast()
    _check_end(request)
    source = await accounts.get_owned(
        session, principal=principal, account_id=request.source_account_id
    )
    target, payee_id = await _target(session, principal=principal, request=request)
    if source.id == target.id:
        raise ledger.SameAccount()
    if AccountStatus.closed.value in (source.status, target.status):
        raise ledger.AccountClosed()
    if source.currency != target.currency:
        raise ledger.CurrencyMismatch()
    first_run_at = request.first_run_at.astimezone(dt.UTC)
    schedule = ScheduledTransfer(
        owner_id=principal.user_id,
        source_account_id=source.id,
        target_account_id=target.id,
        target_account_number=target.number,
        target_is_own=target.owner_id == principal.user_id,
        payee_id=payee_id,
        amount_minor=request.amount,
        currency=source.currency,
        description=request.description,
        frequency=request.frequency.value,
        first_run_at=first_run_at,
        series_start_at=first_run_at,
        series_base=1,
        count=request.count,
        until=request.until.astimezone(dt.UTC) if request.until else None,
        status=ScheduleStatus.active.value,
        next_occurrence=1,
        next_occurrence_at=first_run_at,
        attempt=0,
        next_run_at=first_run_at,
        created_at=now,
    )
    async with write_transaction(session):
        # The row's two foreign keys to accounts take KEY SHARE locks in the order of the
        # keys, while a running occurrence locks accounts FOR UPDATE in id order: taking
        # them here first, in id order, keeps the two from deadlocking (PostgreSQL).
        await session.execute(
            select(Account.id)
            .where(Account.id.in_(sorted({source.id, target.id})))
            .order_by(Account.id)
            .with_for_update(key_share=True)
        )
        session.add(schedule)
        await session.flush()
        await audit.record(
            session,
            event_type="schedule.created",
            actor_id=principal.user_id,
            target_type="scheduled_transfer",
            target_id=schedule.id,
            client=client,
            occurred_at=now,
            details={
                "amount_minor": request.amount,
                "frequency": request.frequency.value,
                "source_account_id": source.id,
                "target_account_id": target.id,
            },
        )
    return schedule


_OWN_SCHEDULES = (
    select(*SCHEDULE.c)
    .where(SCHEDULE.c.owner_id == bindparam("owner_id"))
    .order_by(SCHEDULE.c.created_at.desc(), SCHEDULE.c.id)
)
_OWN_SCHEDULE = select(*SCHEDULE.c).where(
    SCHEDULE.c.id == bindparam("schedule_id"), SCHEDULE.c.owner_id == bindparam("owner_id")
)
_RUNS = (
    select(*RUN.c)
    .where(RUN.c.schedule_id == bindparam("schedule_id"))
    .order_by(RUN.c.id.desc())
    .limit(HISTORY_LIMIT)
)


def list_schedules_sync(connection: Connection, *, principal: Principal) -> list[Any]:
    """The caller's schedules, newest first (rows with the `ScheduledTransfer` names)."""
    return reads.rows(connection, _OWN_SCHEDULES, {"owner_id": principal.user_id})


def get_schedule_sync(
    connection: Connection, *, principal: Principal, schedule_id: uuid.UUID
) -> Any:
    """The caller's schedule (a row with the `ScheduledTransfer` names); 404 for anyone
    else's."""
    params = {"schedule_id": schedule_id, "owner_id": principal.user_id}
    row = reads.first(connection, _OWN_SCHEDULE, params)
    if row is None:
        raise NotFound("No such scheduled transfer.")
    return row


def list_runs_sync(connection: Connection, *, schedule_id: uuid.UUID) -> list[Any]:
    """The schedule's latest runs, newest first (rows with the `ScheduledTransferRun`
    names)."""
    return reads.rows(connection, _RUNS, {"schedule_id": schedule_id})


async def get_schedule(
    session: AsyncSession, *, principal: Principal, schedule_id: uuid.UUID, lock: bool = False
) -> ScheduledTransfer:
    statement = select(ScheduledTransfer).where(ScheduledTransfer.id == schedule_id)
    if lock:
        statement = statement.with_for_update()
    schedule = (await session.execute(statement)).scalar_one_or_none()
    if schedule is None or schedule.owner_id != principal.user_id:
        raise NotFound("No such scheduled transfer.")
    return schedule


async def list_runs(session: AsyncSession, *, schedule_id: uuid.UUID) -> list[ScheduledTransferRun]:
    rows = await session.execute(
        select(ScheduledTransferRun)
        .where(ScheduledTransferRun.schedule_id == schedule_id)
        .order_by(ScheduledTransferRun.id.desc())
        .limit(HISTORY_LIMIT)
    )
    return list(rows.scalars())


async def cancel_schedule(
    session: AsyncSession,
    *,
    principal: Principal,
    schedule_id: uuid.UUID,
    client: ClientInfo,
    now: dt.datetime,
) -> ScheduledTransfer:
    async with write_transaction(session):
        schedule = await get_schedule(
            session, principal=principal, schedule_id=schedule_id, lock=True
        )
        if schedule.status != ScheduleStatus.active.value:
            raise ScheduleNotActive()
        schedule.status = ScheduleStatus.cancelled.value
        schedule.cancelled_at = now
        schedule.next_run_at = None
        await audit.record(
            session,
            event_type="schedule.cancelled",
            actor_id=principal.user_id,
            target_type="scheduled_transfer",
            target_id=schedule.id,
            client=client,
            occurred_at=now,
        )
    return schedule


async def update_schedule(
    session: AsyncSession,
    *,
    principal: Principal,
    schedule_id: uuid.UUID,
    request: ScheduledTransferUpdateIn,
    client: ClientInfo,
    now: dt.datetime,
) -> ScheduledTransfer:
    # `amount` and `next_run_at` sent as null leave them unchanged.
    fields = {
        name
        for name in request.model_fields_set
        if name == "description" or getattr(request, name) is not None
    }
    if request.next_run_at is not None and request.next_run_at < now - PAST_TOLERANCE:
        raise ScheduleInPast()
    async with write_transaction(session):
        schedule = await get_schedule(
            session, principal=principal, schedule_id=schedule_id, lock=True
        )
        if schedule.status != ScheduleStatus.active.value:
            raise ScheduleNotActive()
        if "amount" in fields:
            assert request.amount is not None
            schedule.amount_minor = request.amount
        if "description" in fields:
            schedule.description = request.description
        if "next_run_at" in fields:
            assert request.next_run_at is not None
            # The series restarts at the new date with the next occurrence's number; a
            # pending retry of the current one is dropped.
            moved = request.next_run_at.astimezone(dt.UTC)
            schedule.series_start_at = moved
            schedule.series_base = schedule.next_occurrence
            schedule.next_occurrence_at = moved
            schedule.next_run_at = moved
            schedule.attempt = 0
            if schedule.until is not None and moved > schedule.until:
                schedule.until = None
        await audit.record(
            session,
            event_type="schedule.updated",
            actor_id=principal.user_id,
            target_type="scheduled_transfer",
            target_id=schedule.id,
            client=client,
            occurred_at=now,
            details={"fields": sorted(fields)},
        )
    return schedule


# Running occurrences.

_SCHEDULE_COLUMNS = (
    SCHEDULE.c.id,
    SCHEDULE.c.owner_id,
    SCHEDULE.c.source_account_id,
    SCHEDULE.c.target_account_number,
    SCHEDULE.c.payee_id,
    SCHEDULE.c.amount_minor,
    SCHEDULE.c.description,
    SCHEDULE.c.frequency,
    SCHEDULE.c.series_start_at,
    SCHEDULE.c.series_base,
    SCHEDULE.c.count,
    SCHEDULE.c.until,
    SCHEDULE.c.next_occurrence,
    SCHEDULE.c.next_occurrence_at,
    SCHEDULE.c.attempt,
)


@dataclass(frozen=True, slots=True)
class Due:
    schedule_id: uuid.UUID
    occurrence: int
    attempt: int


def due_sync(connection: Connection, *, now: dt.datetime, limit: int) -> list[Due]:
    rows = connection.execute(
        select(SCHEDULE.c.id, SCHEDULE.c.next_occurrence, SCHEDULE.c.attempt)
        .where(
            SCHEDULE.c.status == ScheduleStatus.active.value,
            SCHEDULE.c.next_run_at <= now,
        )
        .order_by(SCHEDULE.c.next_run_at, SCHEDULE.c.id)
        .limit(limit)
    ).all()
    return [Due(row[0], row[1], row[2]) for row in rows]


def _claim(schedule_id: uuid.UUID, occurrence: int, attempt: int) -> Claim:
    key = f"occurrence:{occurrence}:attempt:{attempt}"
    scope = f"schedule:{schedule_id}"
    # Deterministic: the same try of the same occurrence is the same request.
    fingerprint = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
    return Claim(scope=scope, key=key, fingerprint=fingerprint)


def _payee_exists(connection: Connection, payee_id: uuid.UUID | None) -> bool:
    if payee_id is None:
        return False
    return connection.execute(select(PAYEE.c.id).where(PAYEE.c.id == payee_id)).first() is not None


@dataclass(frozen=True, slots=True)
class Attempt:
    posted: bool
    entry_id: uuid.UUID | None
    reason: str | None


def _attempt(
    connection: Connection,
    row: Row[Any],
    attempt: int,
    *,
    settings: Settings,
    limits: ledger.Limits,
    clock: Any,
) -> Attempt:
    principal = Principal(user_id=row.owner_id, session_id=uuid.UUID(int=0), role=Role.member)
    # To a payee that still exists: as a payee (its new-payee control applies); else by
    # the number it was made to.
    by_payee = _payee_exists(connection, row.payee_id)
    request = TransferIn(
        source_account_id=row.source_account_id,
        target_account_number=None if by_payee else row.target_account_number,
        payee_id=row.payee_id if by_payee else None,
        amount=row.amount_minor,
        description=row.description,
    )
    claim = _claim(row.id, row.next_occurrence, attempt)
    resolve = payments.transfer_resolve(
        principal=principal,
        request=request,
        idempotency_key=f"schedule:{row.id}:{row.next_occurrence}:{attempt}",
        client=None,
        settings=settings,
        clock=clock,
        request_id=None,
    )
    try:
        result = ledger.execute_sync(
            connection,
            resolve,
            limits=limits,
            claim=claim,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            clock=clock,
        )
    except (ledger.Declined, NotFound) as exc:
        # Raised before anything was written (e.g. the source is no longer the owner's).
        return Attempt(False, None, exc.code)
    if result.outcome is not None:
        outcome = result.outcome
        decline = outcome.decline
        return Attempt(outcome.posted, outcome.entry_id, decline.reason if decline else None)
    # A replay of this very try, committed earlier: its stored answer says what happened.
    assert result.response is not None
    body = json.loads(result.response.body)
    posted = result.response.status == 201
    entry = body.get("id") if posted else body.get("entry_id")
    return Attempt(
        posted, uuid.UUID(entry) if entry else None, None if posted else body.get("code")
    )


def run_occurrence_sync(
    connection: Connection,
    due: Due,
    *,
    settings: Settings,
    limits: ledger.Limits,
    clock: Any,
) -> RunStatus | None:
    """Run one due try of one occurrence, record it and advance the schedule, all in the
    caller's transaction. None when it is no longer due (another scheduler ran it, or it
    was cancelled or moved meanwhile)."""
    now: dt.datetime = clock()
    row = connection.execute(
        select(*_SCHEDULE_COLUMNS)
        .where(
            SCHEDULE.c.id == due.schedule_id,
            SCHEDULE.c.status == ScheduleStatus.active.value,
            SCHEDULE.c.next_occurrence == due.occurrence,
            SCHEDULE.c.attempt == due.attempt,
            SCHEDULE.c.next_run_at <= now,
        )
        .with_for_update()
    ).first()
    if row is None:
        return None
    attempt = row.attempt + 1
    result = _attempt(connection, row, attempt, settings=settings, limits=limits, clock=clock)
    if result.posted:
        status = RunStatus.posted
    elif attempt <= settings.schedule_retries:
        status = RunStatus.declined
    else:
        status = RunStatus.failed
    values: dict[str, Any] = {
        "last_run_at": now,
        "last_status": status.value,
        "last_reason": result.reason,
    }
    skipped = 0
    if status is RunStatus.declined:
        values.update(
            attempt=attempt,
            next_run_at=now + dt.timedelta(seconds=settings.schedule_retry_interval_s),
        )
    else:
        frequency = Frequency(row.frequency)
        timezone = timezone_of(settings)
        index = row.next_occurrence - row.series_base
        following, skipped = calendar.next_index_after(
            row.series_start_at, frequency, index, now, timezone
        )
        next_occurrence = row.next_occurrence + (following - index)
        next_at = (
            None
            if frequency is Frequency.once
            else calendar.occurrence_at(row.series_start_at, frequency, following, timezone)
        )
        finished = (
            next_at is None
            or (row.count is not None and next_occurrence > row.count)
            or (row.until is not None and next_at > row.until)
        )
        values.update(
            attempt=0,
            next_occurrence=next_occurrence,
            next_occurrence_at=None if finished else next_at,
            next_run_at=None if finished else next_at,
        )
        if finished:
            values["status"] = ScheduleStatus.completed.value
    run = {
        "schedule_id": row.id,
        "occurrence": row.next_occurrence,
        "attempt": attempt,
        "status": status.value,
        "entry_id": result.entry_id,
        "reason": result.reason,
        "scheduled_for": row.next_occurrence_at or now,
        "ran_at": now,
        "skipped": skipped,
    }
    connection.execute(insert(RUN).values(**run))
    outbox.emit_sync(
        connection,
        type="scheduled_transfer.run",
        owner_id=row.owner_id,
        subject_type="scheduled_transfer",
        subject_id=row.id,
        account_id=row.source_account_id,
        data=run,
    )
    connection.execute(update(SCHEDULE).where(SCHEDULE.c.id == row.id).values(**values))
    return status


async def run_due(
    db: Database, *, now: dt.datetime | None = None, limit: int = 500
) -> Counter[str]:
    """Run every occurrence due by `now` (default: the database's clock) once; returns
    how many posted, were declined (to be retried) and failed."""
    settings = db.settings
    limits = ledger.Limits.from_settings(settings)
    moment = now if now is not None else db.clock()

    def clock() -> dt.datetime:
        # A pass given its own `now` (tests, replays) runs every try at that moment.
        return moment if now is not None else db.clock()

    def find_due(connection: Connection) -> list[Due]:
        return due_sync(connection, now=moment, limit=limit)

    async with db.sessionmaker() as session:
        connection = await session.connection()
        due = await connection.run_sync(find_due)
    writer = writer_for(db)
    gate = asyncio.Semaphore(PARALLEL_RUNS)
    counts: Counter[str] = Counter()

    async def one(item: Due) -> None:
        async with gate:
            try:
                status = await writer.run(
                    lambda connection: run_occurrence_sync(
                        connection, item, settings=settings, limits=limits, clock=clock
                    )
                )
            except DomainError as exc:
                # Another process holds this very try (PostgreSQL): it runs it.
                log.info("schedule_run_skipped", schedule_id=str(item.schedule_id), code=exc.code)
                return
            except Exception as exc:
                log.error(
                    "schedule_run_failed",
                    schedule_id=str(item.schedule_id),
                    error_type=type(exc).__name__,
                )
                return
        if status is not None:
            counts[status.value] += 1

    await asyncio.gather(*(one(item) for item in due))
    return counts
