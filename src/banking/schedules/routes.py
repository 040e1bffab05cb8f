"""Scheduled and standing transfers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core.deps import Client, DbSession, Now
from banking.identity.deps import CurrentUser, MemberRead
from banking.identity.service import Principal
from banking.schedules import service as schedules
from banking.schedules.schemas import (
    ScheduledTransferIn,
    ScheduledTransferOut,
    ScheduledTransferPage,
    ScheduledTransferUpdateIn,
)

router = APIRouter(prefix="/v1", tags=["scheduled transfers"])


@router.post("/scheduled-transfers", status_code=201, response_model=ScheduledTransferOut)
async def create_scheduled_transfer(
    body: ScheduledTransferIn, user: CurrentUser, session: DbSession, client: Client, now: Now
) -> ScheduledTransferOut:
    """Schedule a transfer from one of your accounts: `once`, or a standing order
    (`daily`, `weekly`, `monthly`) from `first_run_at`, for `count` occurrences or until
    `until` (or with no end). A monthly order started on the 31st runs on the last day of
    shorter months; days and times are those of the bank's time zone. Each occurrence is
    one transfer; a declined one is retried (SCHEDULE_RETRIES, SCHEDULE_RETRY_INTERVAL_S),
    then marked failed, and the order goes on."""
    schedule = await schedules.create_schedule(
        session, principal=user, request=body, client=client, now=now
    )
    return schedules.schedule_out(schedule, runs=[])


@router.get("/scheduled-transfers", response_model=ScheduledTransferPage)
async def list_scheduled_transfers(read: MemberRead) -> Response:
    """Your scheduled transfers, newest first, with the next run and the last result."""

    def listing(connection: Connection, principal: Principal) -> ScheduledTransferPage:
        rows = schedules.list_schedules_sync(connection, principal=principal)
        return ScheduledTransferPage(items=[schedules.schedule_out(row) for row in rows])

    return await read.json(listing)


@router.get("/scheduled-transfers/{schedule_id}", response_model=ScheduledTransferOut)
async def get_scheduled_transfer(schedule_id: uuid.UUID, read: MemberRead) -> Response:
    """One scheduled transfer and the history of its runs (newest first)."""

    def detail(connection: Connection, principal: Principal) -> ScheduledTransferOut:
        schedule = schedules.get_schedule_sync(
            connection, principal=principal, schedule_id=schedule_id
        )
        runs = schedules.list_runs_sync(connection, schedule_id=schedule.id)
        return schedules.schedule_out(schedule, runs)

    return await read.json(detail)


@router.patch("/scheduled-transfers/{schedule_id}", response_model=ScheduledTransferOut)
async def update_scheduled_transfer(
    schedule_id: uuid.UUID,
    body: ScheduledTransferUpdateIn,
    user: CurrentUser,
    session: DbSession,
    client: Client,
    now: Now,
) -> ScheduledTransferOut:
    """Change the amount or description of the coming occurrences, or move the next one
    (`next_run_at`; the series goes on from there at the same frequency)."""
    schedule = await schedules.update_schedule(
        session, principal=user, schedule_id=schedule_id, request=body, client=client, now=now
    )
    runs = await schedules.list_runs(session, schedule_id=schedule.id)
    return schedules.schedule_out(schedule, runs)


@router.post("/scheduled-transfers/{schedule_id}/cancel", response_model=ScheduledTransferOut)
async def cancel_scheduled_transfer(
    schedule_id: uuid.UUID, user: CurrentUser, session: DbSession, client: Client, now: Now
) -> ScheduledTransferOut:
    """Cancel a scheduled transfer: no further occurrence runs (409 schedule_not_active
    when it is already completed or cancelled)."""
    schedule = await schedules.cancel_schedule(
        session, principal=user, schedule_id=schedule_id, client=client, now=now
    )
    runs = await schedules.list_runs(session, schedule_id=schedule.id)
    return schedules.schedule_out(schedule, runs)
