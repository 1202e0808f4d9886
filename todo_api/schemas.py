"""The wire format: pydantic models that shape requests and document responses.

Domain rules (lengths, trimming, recurrence) are checked by `todo_core`; these models check
only types, so that every rule has one home and one message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, create_model

from todo_core.category import NAME_MAX
from todo_core.query import LIMIT_DEFAULT, LIMIT_MAX, SEARCH_MAX, Status
from todo_core.task import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX

PriorityLabel = Literal["none", "low", "medium", "high"]


def _rfc3339_text(value: object) -> object:
    # pydantic would also read 1700000000 or "1700000000" as a Unix time: not RFC 3339.
    if not isinstance(value, str) or value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339_text)]

# `json_schema_extra` documents a domain rule in the OpenAPI document without pydantic
# enforcing it a second time: `todo_core` checks it and names the field in a 422.


class TaskWrite(BaseModel):
    """The writable fields of a task (POST creates, PUT replaces them all)."""

    title: str = Field(examples=["Buy milk"], json_schema_extra={"minLength": 1, "maxLength": TITLE_MAX})
    description: str = Field("", json_schema_extra={"maxLength": DESCRIPTION_MAX})
    completed: StrictBool = False
    priority: PriorityLabel = "none"
    due_at: Rfc3339 | None = Field(None, description="RFC 3339 with an offset, e.g. 2026-12-01T09:00:00Z")
    remind_at: Rfc3339 | None = None
    recurrence: str | None = Field(None, examples=["FREQ=WEEKLY;BYDAY=MO,WE"])
    tags: list[str] = Field(
        default_factory=list,
        max_length=200,
        description=f"Up to {TAGS_MAX} distinct tags (case-insensitively), each 1-{TAG_MAX} characters",
    )
    category_id: UUID | None = None


def merge_patch_of(model: type[BaseModel]) -> type[BaseModel]:
    """The JSON merge patch of `model`: every field optional (absent: unchanged) and nullable
    (null: cleared), with the same types, limits and documentation."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        documented = Field(
            None, description=info.description, examples=info.examples, json_schema_extra=info.json_schema_extra
        )
        fields[name] = (annotation | None, documented)
    patch: type[BaseModel] = create_model(f"{model.__name__}Patch", **fields)
    return patch


class TaskPatch(merge_patch_of(TaskWrite)):  # type: ignore[misc]
    """JSON merge patch of a task: an absent field is unchanged, null clears it."""


class CompletionWrite(BaseModel):
    completed: StrictBool


class TaskRead(BaseModel):
    id: UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None
    priority: PriorityLabel
    due_at: datetime | None
    remind_at: datetime | None
    recurrence: str | None
    tags: list[str]
    category_id: UUID | None
    next_occurrence_id: UUID | None = Field(description="Set on a completed repeating task: the task that follows it")
    created_at: datetime
    updated_at: datetime
    version: int


SortParam = Literal[
    "created_at", "-created_at", "updated_at", "-updated_at", "due_at", "-due_at",
    "priority", "-priority", "title", "-title",
]  # fmt: skip


class TaskListParams(BaseModel):
    """The query parameters of a task list (validated as one model: one pass, not thirteen)."""

    status: Status = Status.ALL
    priority: list[PriorityLabel] = []
    tag: list[str] = Field([], description="Repeatable; every tag must match")
    category_id: UUID | None = None
    due_before: Rfc3339 | None = Field(None, description="Due strictly before this instant")
    due_after: Rfc3339 | None = Field(None, description="Due at or after this instant")
    q: str | None = Field(None, max_length=SEARCH_MAX, description="Search title and description")
    sort: SortParam = "created_at"
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX)
    cursor: str | None = Field(None, max_length=1024)


class TaskPage(BaseModel):
    items: list[TaskRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class ReminderList(BaseModel):
    items: list[TaskRead]


class TagCount(BaseModel):
    tag: str
    count: int


class TagList(BaseModel):
    items: list[TagCount]


class CategoryWrite(BaseModel):
    name: str = Field(examples=["Work"], json_schema_extra={"minLength": 1, "maxLength": NAME_MAX})
    color: str | None = Field(None, examples=["#1e90ff"], json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}$"})


class CategoryPatch(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "JSON merge patch of a category"})

    name: str | None = None
    color: str | None = None


class CategoryRead(BaseModel):
    id: UUID
    name: str
    color: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class CategoryList(BaseModel):
    items: list[CategoryRead]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


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
