"""Atomic batches: several task commands in one unit of work, committed together or not at all.

A create may name the task it makes (`ref`); a later operation of the same batch points at that
task with a `Ref` wherever a task id goes (the task itself, a parent, the sibling of a move),
as Todoist's `temp_id` does. The whole batch is one transaction, so it takes one change number:
a client that syncs sees it as one change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from todo_core.clock import Clock
from todo_core.commands import Unchanged
from todo_core.errors import BatchOperationFailed, FieldError, NotFound, PreconditionFailed, ValidationFailed
from todo_core.ports import UnitOfWork
from todo_core.task import Task, TaskFields
from todo_core.use_cases.tasks import (
    KEEP_PARENT,
    KeepParent,
    check_task_room,
    complete_task,
    create_task,
    delete_task,
    move_task,
    patch_task,
    replace_task,
)

BATCH_MAX = 100
REF_MAX = 64

#: The errors that belong to one operation; any other (the store unreachable) is the batch's own.
_OPERATION_ERRORS = (ValidationFailed, NotFound, PreconditionFailed)


@dataclass(frozen=True, slots=True)
class Ref:
    """The task an earlier create of the same batch made, by the `ref` it gave it."""

    name: str


TaskRef = UUID | Ref


@dataclass(frozen=True, slots=True)
class CreateTask:
    fields: TaskFields
    ref: str | None = None
    #: The parent, when it is a task this batch made (then `fields.parent_id` is not read).
    parent: Ref | None = None


@dataclass(frozen=True, slots=True)
class ReplaceTask:
    task: TaskRef
    fields: TaskFields
    parent: Ref | None = None
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class PatchTask:
    task: TaskRef
    changes: Mapping[str, Any]
    #: The new parent, when it is a task this batch made (then `changes` holds no `parent_id`).
    parent: Ref | None = None
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class CompleteTask:
    task: TaskRef
    completed: bool | None = None  # None toggles
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class MoveTask:
    task: TaskRef
    parent: TaskRef | KeepParent | None = field(default=KEEP_PARENT)
    after: TaskRef | None = None
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteTask:
    task: TaskRef
    if_match: int | None = None


Operation = CreateTask | ReplaceTask | PatchTask | CompleteTask | MoveTask | DeleteTask


async def run_batch(
    uow: UnitOfWork, clock: Clock, user_id: str, operations: Sequence[Operation], *, at_most: int | None = None
) -> list[Task | None] | Unchanged[list[Task | None]]:
    """Apply the operations in order, each the task command of its kind, in the one unit of work
    (so one commit and one change number); return, for each, the task as it stands after it (None
    for a delete).

    :raises ValidationFailed: there are no operations, or more than BATCH_MAX.
    :raises BatchOperationFailed: an operation failed (a ref that no earlier create made
        included), with its index and its own error (`ValidationFailed`, `NotFound`,
        `PreconditionFailed`); nothing was applied.
    :raises TooManyTasks: its creates would take the user past `at_most` tasks (its deletes not
        counted); nothing was applied.
    """
    if not 1 <= len(operations) <= BATCH_MAX:
        raise ValidationFailed(FieldError("operations", f"must hold 1 to {BATCH_MAX} operations"))
    _check_refs(operations)
    results: list[Task | None] = []
    made: dict[str, UUID] = {}
    written = False
    await check_task_room(uow, user_id, sum(isinstance(op, CreateTask) for op in operations), at_most)
    for index, operation in enumerate(operations):
        try:
            done = await _apply(uow, clock, user_id, operation, made)
        except _OPERATION_ERRORS as error:
            raise BatchOperationFailed(index, error) from error
        written = written or not isinstance(done, Unchanged)
        task = done.value if isinstance(done, Unchanged) else done
        results.append(task)
        if isinstance(operation, CreateTask) and operation.ref is not None and task is not None:
            made[operation.ref] = task.id
    # A batch that changes nothing takes no change number, as a single command.
    return results if written else Unchanged(results)


async def _apply(
    uow: UnitOfWork, clock: Clock, user_id: str, operation: Operation, made: Mapping[str, UUID]
) -> Task | Unchanged[Task] | None:
    def resolved(task: TaskRef) -> UUID:
        return made[task.name] if isinstance(task, Ref) else task

    match operation:
        case CreateTask(fields=fields, parent=parent):
            if parent is not None:
                fields = dataclasses.replace(fields, parent_id=resolved(parent))
            return await create_task(uow, clock, user_id, fields)
        case ReplaceTask(task=task, fields=fields, parent=parent, if_match=if_match):
            if parent is not None:
                fields = dataclasses.replace(fields, parent_id=resolved(parent))
            return await replace_task(uow, clock, user_id, resolved(task), fields, if_match=if_match)
        case PatchTask(task=task, changes=changes, parent=parent, if_match=if_match):
            if parent is not None:
                changes = {**changes, "parent_id": resolved(parent)}
            return await patch_task(uow, clock, user_id, resolved(task), changes, if_match=if_match)
        case CompleteTask(task=task, completed=completed, if_match=if_match):
            return await complete_task(uow, clock, user_id, resolved(task), completed, if_match=if_match)
        case MoveTask(task=task, parent=parent, after=after, if_match=if_match):
            return await move_task(
                uow,
                clock,
                user_id,
                resolved(task),
                parent_id=parent if parent is None or isinstance(parent, KeepParent) else resolved(parent),
                after=None if after is None else resolved(after),
                if_match=if_match,
            )
        case DeleteTask(task=task, if_match=if_match):
            await delete_task(uow, clock, user_id, resolved(task), if_match=if_match)
            return None


def _check_refs(operations: Sequence[Operation]) -> None:
    """Every ref names a task an earlier create made, and no two creates share one.

    :raises BatchOperationFailed: with a `ValidationFailed` naming the field.
    """
    made: set[str] = set()
    for index, operation in enumerate(operations):
        for name, ref in _refs_in(operation):
            if ref.name not in made:
                message = f"names the ref {ref.name!r}, which no earlier create of this batch gave its task"
                raise BatchOperationFailed(index, ValidationFailed(FieldError(name, message)))
        if isinstance(operation, CreateTask) and operation.ref is not None:
            if not 1 <= len(operation.ref) <= REF_MAX:
                message = f"must be 1 to {REF_MAX} characters"
                raise BatchOperationFailed(index, ValidationFailed(FieldError("ref", message)))
            if operation.ref in made:
                message = "is the ref of an earlier create of this batch already"
                raise BatchOperationFailed(index, ValidationFailed(FieldError("ref", message)))
            made.add(operation.ref)


def _refs_in(operation: Operation) -> Iterator[tuple[str, Ref]]:
    """The refs an operation uses, each with the field it stands in (as the wire names it)."""
    task = getattr(operation, "task", None)
    if isinstance(task, Ref):
        yield "id", task
    parent = getattr(operation, "parent", None)
    if isinstance(parent, Ref):
        yield "parent_id", parent
    after = getattr(operation, "after", None)
    if isinstance(after, Ref):
        yield "after", after
