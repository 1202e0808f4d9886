"""A batch: operations on tasks applied in one transaction, and their results."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field

from todo_api.schemas.common import RequestBody
from todo_api.schemas.tasks import TaskRead
from todo_core.use_cases.batch import BATCH_MAX
from todo_core.use_cases.batch import REF_MAX as BATCH_REF_MAX

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


class BatchOperation(RequestBody):
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


class BatchWrite(RequestBody):
    """Operations applied in order, all in one transaction: all of them or none."""

    operations: list[BatchOperation] = Field(min_length=1, max_length=BATCH_MAX)


class BatchResult(BaseModel):
    status: int = Field(description="What the single route answers: 201 for `create`, 204 for `delete`, else 200")
    body: TaskRead | None = Field(description="The task as the single route returns it; null for `delete`")


class BatchRead(BaseModel):
    results: list[BatchResult] = Field(description="One result per operation, in the order of the operations")
