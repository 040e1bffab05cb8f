from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pydantic import Field, field_validator

from banking.core.schemas import OutSchema, Page


class AuditEventOut(OutSchema):
    id: int
    occurred_at: dt.datetime
    actor_id: uuid.UUID | None
    actor_email: str | None = Field(
        default=None, description="The email of the user who acted (null for the system)."
    )
    event_type: str
    target_type: str | None
    target_id: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
    chain_seq: int | None
    hash: str | None

    @field_validator("details", mode="before")
    @classmethod
    def _parse_details(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class AuditEventPage(Page[AuditEventOut]):
    pass
