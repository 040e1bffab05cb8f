"""What a client shows about the bank before anyone logs in (the web UI's header).

Public and read from the settings only: no database, no secrets.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from banking.core.deps import AppSettings
from banking.core.schemas import OutSchema

router = APIRouter(prefix="/v1", tags=["meta"])


class MetaOut(OutSchema):
    bank_name: str = Field(description="The bank's name (`BANK_NAME`), as statements print it.")
    time_zone: str = Field(
        description="The bank's IANA time zone (`BANK_TIMEZONE`): statements' months and "
        "the days of balance histories are in it.",
        examples=["Europe/London"],
    )


@router.get("/meta", response_model=MetaOut, summary="The bank's public details")
async def get_meta(settings: AppSettings) -> MetaOut:
    """Public facts about the bank for clients to show: its name and time zone; no login
    needed."""
    return MetaOut(bank_name=settings.bank_name, time_zone=settings.bank_timezone)
