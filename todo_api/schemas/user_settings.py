"""A user's settings on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

from todo_api.schemas.common import RequestBody


class SettingsWrite(RequestBody):
    """A user's settings, all of them (PUT replaces them)."""

    time_zone: str = Field(
        examples=["Europe/Berlin"],
        description="An IANA time zone name: the zone of new tasks that name none (existing tasks keep theirs)",
        json_schema_extra={"maxLength": 64},
    )


class SettingsRead(BaseModel):
    time_zone: str = Field(description="An IANA time zone name; `UTC` until the user saves another")
