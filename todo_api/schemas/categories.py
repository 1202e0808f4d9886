"""A category on the wire."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from todo_api.schemas.common import RequestBody, merge_patch_of
from todo_core.category import NAME_MAX


class CategoryWrite(RequestBody):
    name: str = Field(
        examples=["Work"],
        description="Unique among the user's categories in any letter case",
        json_schema_extra={"minLength": 1, "maxLength": NAME_MAX},
    )
    color: str | None = Field(
        None, examples=["#1e90ff"], description="`#rrggbb`", json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}$"}
    )


class CategoryPatch(merge_patch_of(CategoryWrite)):  # type: ignore[misc]
    """JSON merge patch of a category: an absent field is unchanged; null clears the color."""


class CategoryRead(BaseModel):
    id: UUID
    name: str
    color: str | None
    created_at: datetime
    updated_at: datetime
    version: int
