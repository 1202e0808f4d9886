"""The wire format: pydantic models that shape requests and document responses.

Domain rules (lengths, trimming, recurrence) are checked by `todo_core`; these models check
only types, so that every rule has one home and one message.
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, create_model
from pydantic_core import PydanticCustomError

from todo_core import task as domain_task
from todo_core.category import NAME_MAX
from todo_core.query import LIMIT_DEFAULT, LIMIT_MAX, SEARCH_MAX, Sort, Status, TaskQuery
from todo_core.task import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX
from todo_core.use_cases.batch import BATCH_MAX
from todo_core.use_cases.batch import REF_MAX as BATCH_REF_MAX

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


# An offset such as +02:00 that arrived unencoded in a query string: `+` reads as a space.
_UNENCODED_PLUS = re.compile(r"\d[ ]\d{2}:?\d{2}$")


def _rfc3339_text(value: object) -> object:
    # pydantic would also read 1700000000 or "1700000000" as a Unix time: not RFC 3339.
    if isinstance(value, str) and _UNENCODED_PLUS.search(value):
        raise PydanticCustomError(
            "rfc3339", "has a space where its offset's `+` should be: URL-encode `+` as %2B in a query string"
        )
    if not isinstance(value, str) or value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raise PydanticCustomError("rfc3339", "must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


_CALENDAR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _calendar_date_text(value: object) -> object:
    # pydantic would also read a date-time at midnight, or a Unix time, as a date.
    if not isinstance(value, str) or not _CALENDAR_DATE.fullmatch(value):
        raise PydanticCustomError("calendar_date", "must be a calendar date like 2026-12-04 (YYYY-MM-DD)")
    return value


CalendarDate = Annotated[date, BeforeValidator(_calendar_date_text)]


class _Body(BaseModel):
    """A request body: a field the schema does not know is a 422 that names it (a typo must
    not pass unnoticed)."""

    model_config = ConfigDict(extra="forbid")


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339_text)]

# `json_schema_extra` documents a domain rule in the OpenAPI document without pydantic
# enforcing it a second time: `todo_core` checks it and names the field in a 422.


class TaskWrite(_Body):
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


def merge_patch_of(model: type[BaseModel]) -> type[BaseModel]:
    """The JSON merge patch of `model`: every field optional (absent: unchanged), with the same
    types, limits and documentation; a field with a default is nullable (null: back to the
    default), a required one is not (it cannot be cleared)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        if not info.is_required():
            annotation = annotation | None
        documented = Field(
            None, description=info.description, examples=info.examples, json_schema_extra=info.json_schema_extra
        )
        fields[name] = (annotation, documented)
    patch: type[BaseModel] = create_model(f"{model.__name__}Patch", __base__=_Body, **fields)
    return patch


class TaskPatch(merge_patch_of(TaskWrite)):  # type: ignore[misc]
    """JSON merge patch of a task: an absent field is unchanged, null clears it."""


class CompletionWrite(_Body):
    """The state to set; without it (`{}`, or no body at all) the task's state is toggled."""

    completed: StrictBool | None = Field(None, description="`true` or `false`; absent or null: toggle")


class MoveWrite(_Body):
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


class CategoryWrite(_Body):
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


class SettingsWrite(_Body):
    """A user's settings, all of them (PUT replaces them)."""

    time_zone: str = Field(
        examples=["Europe/Berlin"],
        description="An IANA time zone name: the zone of new tasks that name none (existing tasks keep theirs)",
        json_schema_extra={"maxLength": 64},
    )


class SettingsRead(BaseModel):
    time_zone: str = Field(description="An IANA time zone name; `UTC` until the user saves another")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = Field(None, description="With `unavailable`: what is wrong, and what an operator does")


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


REF_PREFIX = "$ref:"


class BatchOperationName(enum.StrEnum):
    """What an operation of a batch does: what the single route of that name does."""

    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    COMPLETE = "complete"
    MOVE = "move"
    DELETE = "delete"


def _body_schemas(*names: str) -> dict[str, Any]:
    return {"anyOf": [*({"$ref": f"#/components/schemas/{name}"} for name in names), {"type": "null"}]}


_TASK_ID_OR_REF: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "uuid"},
        {"type": "string", "pattern": f"^\\$ref:.{{1,{BATCH_REF_MAX}}}$"},
        {"type": "null"},
    ]
}


class BatchOperation(_Body):
    """One operation of a batch, with the rules of its single route. Wherever a task id goes (`id`;
    `parent_id` in a body; `after` in a move), `"$ref:<name>"` means the task that an earlier
    create of the same batch made with `"ref": "<name>"`."""

    op: BatchOperationName
    id: str | None = Field(
        None,
        description='The task (all but `create`): its id, or `"$ref:<name>"`',
        json_schema_extra=_TASK_ID_OR_REF,
    )
    ref: str | None = Field(
        None,
        examples=["groceries"],
        description="With `create`: a name for the task it makes, for later operations of the batch to use as"
        ' `"$ref:<name>"`; unique in the batch',
        json_schema_extra={"minLength": 1, "maxLength": BATCH_REF_MAX},
    )
    body: dict[str, Any] | None = Field(
        None,
        description="The single route's body: `TaskWrite` for `create` and `update`, `TaskPatch` (a JSON merge"
        " patch) for `patch`, `CompletionWrite` or none (toggles) for `complete`, `MoveWrite` for `move`, none"
        ' for `delete`. Its `parent_id` (and a move\'s `after`) may be `"$ref:<name>"`',
        json_schema_extra=_body_schemas("TaskWrite", "TaskPatch", "CompletionWrite", "MoveWrite"),
    )
    if_match: str | None = Field(
        None,
        examples=['"3"'],
        description="As the `If-Match` header of the single route: the task's ETag; a stale one fails the batch"
        " with 412",
    )


class BatchWrite(_Body):
    """Operations applied in order, all in one transaction: all of them or none."""

    operations: list[BatchOperation] = Field(min_length=1, max_length=BATCH_MAX)


class BatchResult(BaseModel):
    status: int = Field(description="What the single route answers: 201 for `create`, 204 for `delete`, else 200")
    body: TaskRead | None = Field(description="The task as the single route returns it; null for `delete`")


class BatchRead(BaseModel):
    results: list[BatchResult] = Field(description="One result per operation, in the order of the operations")


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


# Export and import: one document, the same schema both ways (`todo_core.portability`).

_IN_THE_DOCUMENT = "The id of {what} in this document (an import gives everything new ids)"


class ExportedCategory(CategoryWrite):
    """A category in an export document."""

    id: UUID = Field(description="Its id in the exporting account; what tasks' `category_id` name")
    created_at: Rfc3339 | None = Field(None, description="Kept on import; absent: the time of the import")
    updated_at: Rfc3339 | None = Field(None, description="Not imported (an import is a change)")


class ExportedTask(TaskWrite):
    """A task in an export document: what a user writes on it, its completion, its links."""

    id: UUID = Field(description="Its id in the exporting account; what other tasks' links name")
    category_id: UUID | None = Field(None, description=_IN_THE_DOCUMENT.format(what="one of the document's categories"))
    parent_id: UUID | None = Field(
        None,
        description=_IN_THE_DOCUMENT.format(what="the task this one is a step of")
        + "; at most 4 ancestors. The order of siblings in the document is their order",
    )
    completed_at: Rfc3339 | None = Field(
        None, description="When it was completed (kept on import); null on an open task; absent: the time of the import"
    )
    created_at: Rfc3339 | None = Field(None, description="Kept on import; absent: the time of the import")
    updated_at: Rfc3339 | None = Field(None, description="Not imported (an import is a change)")
    next_occurrence_id: UUID | None = Field(
        None,
        description=_IN_THE_DOCUMENT.format(what="the task that follows this completed repeating task")
        + ": completing it again makes no second one",
    )


class AccountDocument(_Body):
    """All of a user's data: `GET /export` writes it, `POST /import` reads it. Tasks come in
    structure order: the top-level tasks, then their steps, and so on (a parent always before
    its steps), siblings in the user's order."""

    # One schema for both directions: the document a client reads is the one it sends back.
    model_config = ConfigDict(extra="forbid", json_schema_mode_override="validation")

    format: Literal["todo-export"] = Field(description="Always `todo-export`")
    version: Literal[1] = Field(description="The version of the format: 1")
    exported_at: Rfc3339 | None = Field(None, description="When it was exported; not imported")
    settings: SettingsWrite | None = Field(None, description="On import, replace the account's; absent: kept")
    categories: list[ExportedCategory] = Field(
        default_factory=list, description="On import, one named as one of the account's (in any case) is merged into it"
    )
    tasks: list[ExportedTask] = Field(default_factory=list)


class ImportedIds(BaseModel):
    categories: dict[str, UUID] = Field(description="Each category id of the document, and the account's id for it")
    tasks: dict[str, UUID] = Field(description="Each task id of the document, and the new task's id")


class ImportResult(BaseModel):
    """What an import made."""

    categories: int = Field(description="Categories created")
    merged_categories: int = Field(description="Categories of the document merged into the account's of that name")
    tasks: int = Field(description="Tasks created")
    ids: ImportedIds


# Webhooks (`todo_core.webhooks`).

WebhookEventType = Literal["task.created", "task.updated", "task.completed", "task.deleted", "reminder.due"]


class WebhookWrite(_Body):
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
