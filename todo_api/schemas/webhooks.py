"""Webhook endpoints and their deliveries on the wire (`todo_core.webhooks`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from todo_api.schemas.common import RequestBody

WebhookEventType = Literal["task.created", "task.updated", "task.completed", "task.deleted", "reminder.due"]


class WebhookWrite(RequestBody):
    url: str = Field(
        examples=["https://example.com/hooks/todo"],
        description="Where events are POSTed: http(s) only, to a host that resolves to public addresses only",
        json_schema_extra={"minLength": 1, "maxLength": 2048},
    )
    events: list[WebhookEventType] | None = Field(
        None, description="The event types it receives (default: all)", json_schema_extra={"minItems": 1}
    )
    description: str | None = Field(None, json_schema_extra={"maxLength": 500})


class WebhookRead(BaseModel):
    """An endpoint, without its secret."""

    id: UUID
    url: str
    events: list[WebhookEventType]
    description: str | None
    created_at: datetime
    enabled: bool = Field(description="Whether events are sent to it")
    disabled_at: datetime | None = Field(description="When it was disabled (null: enabled)")
    disabled_reason: str | None = Field(description="Why it was disabled")
    failing_since: datetime | None = Field(description="Since when every attempt to it failed (null: it is healthy)")


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="`whsec_` + base64 of the signing key (Standard Webhooks). Shown only in this response"
    )


class WebhookDeliveryRead(BaseModel):
    """One event sent (or to be sent) to an endpoint, and how its attempts went."""

    webhook_id: str = Field(description="Its `webhook-id` header: the same in every attempt")
    event_type: WebhookEventType
    created_at: datetime
    state: Literal["pending", "delivered", "failed"] = Field(
        description="`failed`: every attempt failed, no more are made"
    )
    attempts: int = Field(description="How many attempts were made")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="The HTTP status of the last attempt (null: none came back)")
    last_error: str | None = Field(description="What went wrong before any status came back")
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending only)")
