"""Four-eyes approvals: the queue, approve and reject; staff-set thresholds."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.approvals import service as approvals
from banking.approvals.models import ApprovalKind, ApprovalStatus
from banking.approvals.schemas import (
    ApprovalOut,
    ApproveIn,
    RejectIn,
    ThresholdIn,
    ThresholdOut,
)
from banking.core.deps import Client, DbSession
from banking.core.schemas import Page
from banking.identity.deps import AdminUser, CurrentUser, MemberRead
from banking.identity.service import Principal

router = APIRouter(prefix="/v1", tags=["approvals"])

_DECISION_RESPONSES: dict[int | str, dict[str, str]] = {
    403: {"description": "insufficient_role: only admins decide approvals."},
    404: {"description": "No such approval."},
    409: {
        "description": "self_approval (the maker or the member whose money it is), "
        "approval_not_pending (already decided: of two decisions at once, one wins), "
        "approval_expired (lapsed; its hold was released)."
    },
}


@router.get("/approvals", response_model=Page[ApprovalOut])
async def list_approvals(
    read: MemberRead,
    status: ApprovalStatus | None = None,
    kind: ApprovalKind | None = None,
    account_id: uuid.UUID | None = None,
    older_than_s: Annotated[int | None, Query(ge=0, le=10**8)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Staff: the approval queue across the bank; members: their own requests. Newest
    first; filters: `status`, `kind`, `account_id` (either account of the request),
    `older_than_s` (age in seconds)."""
    filters = approvals.ApprovalFilters(
        status=status.value if status else None,
        kind=kind.value if kind else None,
        account_id=account_id,
        older_than_s=older_than_s,
        limit=limit,
        cursor=cursor,
    )
    now = read.now

    def listing(connection: Connection, principal: Principal) -> Page[ApprovalOut]:
        rows, next_cursor = approvals.list_approvals_sync(
            connection, principal=principal, filters=filters, now=now
        )
        return Page[ApprovalOut](
            items=[approvals.approval_out(row) for row in rows], next_cursor=next_cursor
        )

    return await read.json(listing)


@router.get("/approvals/{approval_id}", response_model=ApprovalOut)
async def get_approval(approval_id: uuid.UUID, read: MemberRead) -> Response:
    """One approval (yours, or any for staff)."""

    def detail(connection: Connection, principal: Principal) -> ApprovalOut:
        return approvals.get_approval_sync(connection, principal=principal, approval_id=approval_id)

    return await read.json(detail)


@router.post(
    "/approvals/{approval_id}/approve", response_model=ApprovalOut, responses=_DECISION_RESPONSES
)
async def approve(
    approval_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    client: Client,
    body: ApproveIn | None = None,
) -> ApprovalOut:
    """Approve a pending request (admin; never its maker or the member whose money it is):
    it is executed exactly once. A transfer or reversal is posted with funds, status and
    limits checked again now; if the ledger declines it, the decline is recorded, the hold
    released and the approval is `failed`. An `account_unfreeze` or `daily_limit_raise`
    is applied if the account is still as it was asked (otherwise `failed`:
    `account_not_frozen`, `limit_changed`, `account_closed`)."""
    return await approvals.decide(
        session,
        approval_id=approval_id,
        principal=user,
        approve=True,
        reason=body.reason if body else None,
        client=client,
    )


@router.post(
    "/approvals/{approval_id}/reject", response_model=ApprovalOut, responses=_DECISION_RESPONSES
)
async def reject(
    approval_id: uuid.UUID, body: RejectIn, user: CurrentUser, session: DbSession, client: Client
) -> ApprovalOut:
    """Reject a pending request with a `reason` (admin; never its maker or owner): the
    hold is released; a staff action is not applied (the account stays as it is)."""
    return await approvals.decide(
        session,
        approval_id=approval_id,
        principal=user,
        approve=False,
        reason=body.reason,
        client=client,
    )


@router.put("/admin/accounts/{account_id}/approval-threshold", response_model=ThresholdOut)
async def set_threshold(
    account_id: uuid.UUID, body: ThresholdIn, staff: AdminUser, session: DbSession, client: Client
) -> ThresholdOut:
    """Raise an account's approval threshold (admin): its transfers up to `threshold` post
    without an approval. Below the bank's default for the currency: 422
    `threshold_below_default`."""
    threshold = await approvals.set_threshold(
        session,
        principal=staff,
        account_id=account_id,
        threshold_minor=body.threshold,
        client=client,
    )
    return ThresholdOut(account_id=account_id, threshold=threshold)
