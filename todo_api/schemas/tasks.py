"""A task on the wire: what a client writes, what it reads, and how it asks for a list."""

from __future__ import annotations

import enum
from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool

from todo_api.schemas.common import CalendarDate, RequestBody, Rfc3339, merge_patch_of
from todo_core import task as domain_task
from todo_core.query import LIMIT_DEFAULT, LIMIT_MAX, SEARCH_MAX, Sort, Status, TaskQuery
from todo_core.task import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX

# Named enumerations: each is one schema of the OpenAPI document that a client can import.
# They spell out the domain's values (a test holds them equal), so that a type checker sees them.


class Priority(enum.StrEnum):
    """How urgent a task is."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class TaskStatus(enum.StrEnum):
    """Which tasks a list shows: all of them, the open ones, or the completed ones."""

    ALL = "all"
    PENDING = "pending"
    COMPLETED = "completed"


class TaskSort(enum.StrEnum):
    """The order of a task list: a field, ascending, or descending with a leading `-`. A task
    without a due date comes last either way; an all-day task is due at the start of its day in
    its time zone. `position` is the user's own order of siblings (see `/move`)."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    TITLE = "title"
    TITLE_DESC = "-title"
    POSITION = "position"
    POSITION_DESC = "-position"


class TaskWrite(RequestBody):
    """The writable fields of a task (POST creates, PUT replaces them all)."""

    title: str = Field(examples=["Buy milk"], json_schema_extra={"minLength": 1, "maxLength": TITLE_MAX})
    description: str = Field("", json_schema_extra={"maxLength": DESCRIPTION_MAX})
    completed: StrictBool = False
    priority: Priority = Priority.NONE
    due_at: Rfc3339 | None = Field(None, description="RFC 3339 with an offset, e.g. 2026-12-01T09:00:00Z")
    due_date: CalendarDate | None = Field(
        None,
        examples=["2026-12-04"],
        description="An all-day due date (`YYYY-MM-DD`, in the task's time zone); not with `due_at`",
    )
    remind_at: Rfc3339 | None = Field(None, description="RFC 3339 with an offset; when to remind the user")
    recurrence: str | None = Field(
        None,
        examples=["FREQ=WEEKLY;BYDAY=MO,WE"],
        description=(
            "An RFC 5545 RRULE (needs `due_at` or `due_date`): completing the task creates the next one, with"
            " fresh open copies of its steps"
        ),
        json_schema_extra={"maxLength": 500},
    )
    time_zone: str | None = Field(
        None,
        examples=["Europe/Berlin"],
        description=(
            "An IANA time zone name: the repeat rule steps on this zone's wall clock (a daily 09:00 stays"
            " at 09:00 when the clocks change). Absent or null: the user's setting (`GET /settings`)"
        ),
        json_schema_extra={"maxLength": 64},
    )
    tags: list[str] = Field(
        default_factory=list,
        description=f"Up to {TAGS_MAX} tags, each 1-{TAG_MAX} characters; repeats (in any letter case) are merged",
        json_schema_extra={"maxItems": TAGS_MAX, "items": {"type": "string", "minLength": 1, "maxLength": TAG_MAX}},
    )
    category_id: UUID | None = Field(None, description="One of the user's categories")
    parent_id: UUID | None = Field(
        None,
        description=(
            "Makes the task a step of another of the user's tasks (not itself or one of its own steps; at most 4"
            " ancestors). A new parent puts it last among its new siblings"
        ),
    )


class TaskPatch(merge_patch_of(TaskWrite)):  # type: ignore[misc]
    """JSON merge patch of a task: an absent field is unchanged, null clears it."""


class CompletionWrite(RequestBody):
    """The state to set; without it (`{}`, or no body at all) the task's state is toggled."""

    completed: StrictBool | None = Field(None, description="`true` or `false`; absent or null: toggle")


class MoveWrite(RequestBody):
    """Where a task goes: right after a sibling, or first, under a parent."""

    parent_id: UUID | None = Field(
        None, description="The new parent (null: the top level). Absent: the task keeps its parent"
    )
    after: UUID | None = Field(
        None, description="The sibling to place the task right after (a task under the new parent); null: first"
    )


class TaskRead(BaseModel):
    id: UUID
    user_id: str = Field(description="The owner: the `{user_id}` of the paths that reach the task")
    title: str
    description: str
    completed: bool
    completed_at: datetime | None
    priority: Priority
    due_at: datetime | None
    due_date: date | None = Field(description="An all-day task's due date, `YYYY-MM-DD`")
    remind_at: datetime | None
    recurrence: str | None
    time_zone: str = Field(description="The task's IANA time zone, e.g. Europe/Berlin")
    tags: list[str]
    category_id: UUID | None
    parent_id: UUID | None = Field(description="The task this one is a step of; null for a top-level task")
    next_occurrence_id: UUID | None = Field(description="Set on a completed repeating task: the task that follows it")
    position: str = Field(
        description="Opaque; orders the task among its siblings (compare as strings, or list with `sort=position`)"
    )
    created_at: datetime
    updated_at: datetime
    version: int


class TaskListParams(BaseModel):
    """The query parameters of a task list (validated as one model: one pass, not thirteen)."""

    status: TaskStatus = TaskStatus.ALL
    priority: list[Priority] = Field([], description="Repeatable; any of them matches")
    tag: list[str] = Field([], description="Repeatable; every tag must match")
    category_id: UUID | None = None
    due_before: Rfc3339 | None = Field(
        None, description="Due strictly before this instant (an all-day task: the start of its day)"
    )
    due_after: Rfc3339 | None = Field(None, description="Due at or after this instant (an all-day task: its start)")
    q: str | None = Field(None, max_length=SEARCH_MAX, description="Search title and description")
    parent_id: UUID | None = Field(None, description="Only the direct steps of this task")
    top_level: bool | None = Field(None, description="true: only tasks without a parent; false: only steps")
    sort: TaskSort = TaskSort.CREATED_AT
    limit: int = Field(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX)
    cursor: str | None = Field(
        None,
        max_length=1024,
        description='Opaque; the previous page\'s `Link: <…>; rel="next"` carries it: follow that URL',
    )

    def task_query(self) -> TaskQuery:
        """The domain's query these parameters ask for, checked (without the page's cursor).

        :raises ValidationFailed: a combination the domain refuses.
        """
        return TaskQuery(
            status=Status(self.status),
            priorities=frozenset(domain_task.Priority.from_label(label) for label in self.priority),
            tags=tuple(self.tag),
            category_id=self.category_id,
            due_before=self.due_before,
            due_after=self.due_after,
            search=self.q,
            parent_id=self.parent_id,
            top_level=self.top_level,
            sort=Sort.parse(self.sort),
            limit=self.limit,
        ).validated()


class TagCount(BaseModel):
    tag: str
    count: int
