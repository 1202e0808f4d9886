"""The MCP tools' wire format (`todo_api.assistant`): the arguments they share and what they
answer, built on the REST API's models so that a task reads the same from either."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, field_serializer

from todo_api.schemas.batch import BatchOperation
from todo_api.schemas.categories import CategoryRead
from todo_api.schemas.tasks import TaskRead
from todo_core.idempotency import KEY_MAX_LENGTH
from todo_core.use_cases.batch import BATCH_MAX
from todo_core.views import instant_text


class _RestInstants(BaseModel):
    """Instants written as the REST API writes them (`todo_core.views.instant_text`), so that a
    task reads the same from either."""

    @field_serializer("*", mode="wrap")
    def _instant(self, value: Any, handler: SerializerFunctionWrapHandler) -> Any:
        return instant_text(value) if isinstance(value, datetime) else handler(value)


class TaskView(TaskRead, _RestInstants):
    """A task as the REST API shows it."""


class CategoryView(CategoryRead, _RestInstants):
    """A category as the REST API shows it."""


class TaskResult(BaseModel):
    """What a tool that changed one task answers: the Phase III fields, and the task itself."""

    task_id: UUID
    status: Literal["created", "updated", "completed", "reopened", "moved", "deleted"] = Field(
        description="What the call did to the task"
    )
    title: str
    task: TaskView = Field(description="The task as the REST API shows it (for `deleted`: as it was)")


class TaskListResult(BaseModel):
    tasks: list[TaskView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class CategoryListResult(BaseModel):
    categories: list[CategoryView]


class OverviewSection(BaseModel):
    tasks: list[TaskView]
    more: bool = Field(description="More tasks than shown: list them with `list_tasks`")


class Overview(_RestInstants):
    time_zone: str = Field(description="The user's time zone, in which today and the week are reckoned")
    now: datetime
    overdue: OverviewSection = Field(description="Open tasks whose due time has passed, before today")
    today: OverviewSection = Field(description="Open tasks due today (all-day or timed)")
    next_7_days: OverviewSection = Field(description="Open tasks due in the seven days after today")
    counts: dict[str, int] = Field(description="How many tasks each section holds (at most the page size shown)")


class AssistantBatchOperation(BatchOperation):
    """A batch operation as REST's, its body described in words: REST's schema points into the
    OpenAPI document's components, which a tool's schema does not have."""

    body: dict[str, Any] | None = Field(
        None,
        description="create and update: the task's fields as add_task takes them (title required); patch: the "
        'fields to change (null clears); complete: {"completed": true} or {"completed": false}; move: '
        '{"parent_id", "after"}; delete: none. parent_id and after may be "$ref:<name>"',
    )


class BatchItem(BaseModel):
    task_id: UUID | None = Field(description="The task's id (null for a delete of a task the batch made)")
    status: Literal["created", "updated", "completed", "reopened", "moved", "deleted"]
    title: str | None = Field(description="The task's title (null for a delete)")
    task: TaskView | None = Field(description="The task after the operation (null for a delete)")


class BatchResult(BaseModel):
    results: list[BatchItem] = Field(description="One per operation, in order")


# Arguments that several tools take.

UserIdArg = Annotated[
    str,
    Field(description="The id of the user this connection acts for (the token's subject); no other is accepted"),
]
TaskIdArg = Annotated[UUID, Field(description="The task's id (a UUID, as tools return it)")]
IdempotencyKeyArg = Annotated[
    str | None,
    Field(
        None,
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        description="Any unique string (a UUID will do) that makes a retry safe: a retry with the same key "
        "and arguments returns the first answer and changes nothing more",
    ),
]


BatchOperationsArg = Annotated[
    list[AssistantBatchOperation], Field(min_length=1, max_length=BATCH_MAX, description="Applied in order")
]
