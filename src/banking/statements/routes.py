"""Monthly statements: the months with activity, and one month as JSON, CSV or PDF."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Path, Query
from sqlalchemy.engine import Connection
from starlette.responses import Response

from banking.core.pagination import Pagination
from banking.identity.deps import MemberRead
from banking.identity.service import Principal
from banking.statements import render
from banking.statements import service as statements
from banking.statements.schemas import (
    StatementMonthPage,
    StatementOut,
    month_out,
    statement_out,
)

router = APIRouter(prefix="/v1", tags=["statements"])

CSV_MEDIA_TYPE = "text/csv"
PDF_MEDIA_TYPE = "application/pdf"


class StatementFormat(StrEnum):
    json = "json"
    csv = "csv"
    pdf = "pdf"


_STATEMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The statement: JSON by default, CSV or PDF on request.",
        "content": {
            CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
            PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _month_in_cursor(value: Any) -> statements.Month:
    try:
        return statements.Month.parse(str(value))
    except statements.InvalidMonth as exc:
        raise ValueError("not a month") from exc


def _chosen_format(requested: StatementFormat | None, accept: str | None) -> StatementFormat:
    if requested is not None:
        return requested
    accepted = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    if CSV_MEDIA_TYPE in accepted:
        return StatementFormat.csv
    if PDF_MEDIA_TYPE in accepted:
        return StatementFormat.pdf
    return StatementFormat.json


@router.get("/accounts/{account_id}/statements", response_model=StatementMonthPage)
async def list_statements(account_id: uuid.UUID, read: MemberRead, page: Pagination) -> Response:
    """The months (YYYY-MM, in the bank's time zone) in which the account has at least one
    transaction, newest first. The current month is a statement to date (`is_partial`)."""
    after = page.after(_month_in_cursor)
    before = after[0] if after else None
    timezone = read.settings.bank_timezone
    current = statements.current_month(read.now, timezone)

    def listing(connection: Connection, principal: Principal) -> StatementMonthPage:
        months, more = statements.list_months_sync(
            connection,
            principal=principal,
            account_id=account_id,
            timezone=timezone,
            limit=page.limit,
            before=before,
        )
        return StatementMonthPage(
            items=[month_out(month, current=current) for month in months],
            next_cursor=page.cursor_for([str(months[-1])]) if more and months else None,
        )

    return await read.json(listing, replica=True)


@router.get(
    "/accounts/{account_id}/statements/{month}",
    response_model=StatementOut,
    responses=_STATEMENT_RESPONSES,
)
async def get_statement(
    account_id: uuid.UUID,
    month: Annotated[
        str,
        Path(max_length=16, description="The calendar month, YYYY-MM.", examples=["2024-03"]),
    ],
    read: MemberRead,
    format: Annotated[
        StatementFormat | None,
        Query(description="`json` (default), `csv` or `pdf`; overrides the Accept header."),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """One calendar month of the account: opening and closing balances, totals and every
    line with its running balance; open card holds are listed apart. The month is cut at
    midnight in the bank's time zone (`period.timezone`); the current month is a statement
    to date. `?format=csv` (or `Accept: text/csv`) gives the lines as CSV with a header row,
    `?format=pdf` (or `Accept: application/pdf`) a printable PDF."""
    settings, now = read.settings, read.now

    def build(connection: Connection, principal: Principal) -> statements.Statement:
        return statements.build_statement_sync(
            connection,
            principal=principal,
            account_id=account_id,
            month=month,
            timezone=settings.bank_timezone,
            now=now,
        )

    statement = await read.run(build, snapshot=True, replica=True)
    chosen = _chosen_format(format, accept)
    if chosen is StatementFormat.csv:
        return Response(
            render.to_csv(statement),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers=_attachment(render.filename(statement, "csv")),
        )
    if chosen is StatementFormat.pdf:
        # Rendering is CPU work: keep it off the event loop.
        pdf = await to_thread.run_sync(
            lambda: render.to_pdf(
                statement,
                bank_name=settings.bank_name,
                bank_address=settings.bank_address,
                bank_contact=settings.bank_contact,
            )
        )
        return Response(
            pdf, media_type=PDF_MEDIA_TYPE, headers=_attachment(render.filename(statement, "pdf"))
        )
    return Response(statement_out(statement).model_dump_json(), media_type="application/json")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
