from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from banking.core.schemas import Description, OutSchema, Page, Schema

EventType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]
EventPattern = Annotated[
    str,
    StringConstraints(pattern=r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$", max_length=64),
]
# Printable ASCII without spaces (an international host name in its xn-- form).
WebhookUrl = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        min_length=8,
        max_length=2048,
        pattern=r"^[hH][tT][tT][pP][sS]?://[!-~]+$",
    ),
]


class SubjectOut(OutSchema):
    type: str
    id: str


class EventOut(OutSchema):
    id: uuid.UUID = Field(description="Stable and sortable by creation time (UUIDv7 layout).")
    type: str = Field(description="e.g. `transfer.posted`; docs/events.md lists every type.")
    created_at: dt.datetime
    owner_id: uuid.UUID | None = Field(description="The user the event belongs to.")
    account_id: uuid.UUID | None
    subject: SubjectOut
    data: dict[str, Any] = Field(description="Shaped like the API's own resource.")


class EventPage(Page[EventOut]):
    pass


class WebhookEndpointIn(Schema):
    url: WebhookUrl = Field(description="https URL (http and private hosts only in development).")
    event_types: list[EventPattern] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=50,
        description="Event types to receive: exact (`transfer.posted`), a family "
        "(`card.*`) or `*` for every type.",
    )
    description: Description | None = None


class WebhookEndpointPatch(Schema):
    url: WebhookUrl | None = None
    event_types: list[EventPattern] | None = Field(default=None, min_length=1, max_length=50)
    description: Description | None = None
    status: Literal["enabled", "disabled"] | None = Field(
        default=None, description="Disable to pause deliveries; enable to resume them."
    )


class RotateSecretIn(Schema):
    grace_period_s: int | None = Field(
        default=None,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old secret stays valid (both signatures are sent "
        "meanwhile); default WEBHOOK_SECRET_GRACE_S.",
    )


class WebhookEndpointOut(OutSchema):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    status: str = Field(description="enabled or disabled.")
    disabled_reason: str | None = Field(
        description="`failing` when deliveries failed for 3 days; `owner` when you did."
    )
    previous_secret_expires_at: dt.datetime | None = Field(
        description="Until then the previous secret also signs each delivery."
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="The signing secret: shown only here, keep it safe.")


class WebhookEndpointPage(Page[WebhookEndpointOut]):
    pass


class AttemptOut(OutSchema):
    attempted_at: dt.datetime
    succeeded: bool
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class DeliveryOut(OutSchema):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str = Field(description="pending, succeeded or failed (given up).")
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status_code: int | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    attempt_log: list[AttemptOut] = Field(description="The latest attempts, newest first.")


class DeliveryPage(Page[DeliveryOut]):
    pass
