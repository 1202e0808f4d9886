"""The change feed a client syncs its local copy with."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from todo_api.schemas.categories import CategoryRead
from todo_api.schemas.tasks import TaskRead


class DeletedIds(BaseModel):
    tasks: list[UUID] = Field(description="Tasks deleted since `since`: drop them from the local copy")
    categories: list[UUID] = Field(description="Categories deleted since `since`")


class ChangeFeedPage(BaseModel):
    """What changed after a sync token (or, without one, everything: a snapshot)."""

    tasks: list[TaskRead] = Field(description="Tasks created or changed, as they are now")
    categories: list[CategoryRead] = Field(description="Categories created or changed, as they are now")
    deleted: DeletedIds
    next_since: str = Field(description="Pass as `since` next time: the position right after this page")
    has_more: bool = Field(description="More changes follow: ask again at once with `next_since`")
