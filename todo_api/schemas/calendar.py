"""A calendar subscription link (feed) on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class CalendarFeedRead(BaseModel):
    """A calendar subscription link, without its secret (only its hash is kept)."""

    id: UUID
    created_at: datetime


class CalendarFeedCreated(CalendarFeedRead):
    url: str = Field(
        description="The absolute URL to subscribe to (`…/feeds/<secret>.ics`). Shown only in this "
        "response: the service keeps a hash of the secret, never the secret itself"
    )
    webcal_url: str = Field(
        description="The same link with the `webcal://` scheme: opened (clicked) on a device, it asks the "
        "calendar app (Apple Calendar, Outlook, Thunderbird) to subscribe, where `url` would download "
        "the file once. Services that fetch feeds themselves (Google Calendar) take `url`"
    )
