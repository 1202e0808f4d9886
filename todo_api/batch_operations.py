"""A batch's operations, read from the wire into the domain's: each body with the very model of
its single route (so a broken rule reads the same), `"$ref:<name>"` into a `Ref`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from todo_api.problems import field_errors
from todo_api.representation import if_match_version
from todo_api.schemas.batch import REF_PREFIX, BatchOperation, BatchOperationName
from todo_api.schemas.tasks import CompletionWrite, MoveWrite, TaskPatch, TaskWrite
from todo_core.errors import BatchOperationFailed, FieldError, ValidationFailed
from todo_core.task import TaskFields
from todo_core.use_cases import batch
from todo_core.use_cases.tasks import KEEP_PARENT, KeepParent

_UUID = TypeAdapter(UUID)
_NEEDS_BODY = {BatchOperationName.CREATE, BatchOperationName.UPDATE, BatchOperationName.PATCH, BatchOperationName.MOVE}


class _ShapeInvalid(ValidationFailed):
    """A body that its route's model refuses: told as the route tells it."""

    def __str__(self) -> str:
        return "The request does not have the expected shape."


def operations_of(wire: list[BatchOperation]) -> list[batch.Operation]:
    """:raises BatchOperationFailed: an operation's shape is wrong, with a `ValidationFailed`
    naming its fields as its single route would."""
    return [_operation(index, operation) for index, operation in enumerate(wire)]


def _operation(index: int, wire: BatchOperation) -> batch.Operation:
    try:
        return _read(wire)
    except ValidationError as error:  # a body that its route's model refuses
        raise BatchOperationFailed(index, _ShapeInvalid(field_errors(error))) from error
    except ValidationFailed as error:
        raise BatchOperationFailed(index, error) from error


def _read(wire: BatchOperation) -> batch.Operation:
    op = wire.op
    if op is BatchOperationName.CREATE:
        _absent(wire.id, "id", "a create takes no id: the service gives the task one")
        _absent(wire.if_match, "if_match", "a create has no version to match")
    else:
        _absent(wire.ref, "ref", "only a create names the task it makes")
    if op is BatchOperationName.DELETE:
        _absent(wire.body, "body", "a delete takes no body")
    elif op in _NEEDS_BODY and wire.body is None:
        raise ValidationFailed(FieldError("body", "Field required"))
    body = dict(wire.body or {})
    if_match = if_match_version(wire.if_match)
    if op is BatchOperationName.CREATE:
        parent = _ref_in(body, "parent_id")
        return batch.CreateTask(_fields(body), ref=wire.ref, parent=parent)
    task = _task(wire.id)
    if op is BatchOperationName.UPDATE:
        parent = _ref_in(body, "parent_id")
        return batch.ReplaceTask(task, _fields(body), parent=parent, if_match=if_match)
    if op is BatchOperationName.PATCH:
        parent = _ref_in(body, "parent_id")
        changes = TaskPatch.model_validate(body).model_dump(exclude_unset=True)
        if parent is not None:
            changes.pop("parent_id")
        return batch.PatchTask(task, changes, parent=parent, if_match=if_match)
    if op is BatchOperationName.COMPLETE:
        completed = CompletionWrite.model_validate(body).completed if wire.body is not None else None
        return batch.CompleteTask(task, completed, if_match=if_match)
    if op is BatchOperationName.MOVE:
        parent_ref, after_ref = _ref_in(body, "parent_id"), _ref_in(body, "after")
        move = MoveWrite.model_validate(body)
        new_parent: batch.TaskRef | KeepParent | None = parent_ref or move.parent_id
        if parent_ref is None and "parent_id" not in move.model_fields_set:
            new_parent = KEEP_PARENT
        return batch.MoveTask(task, new_parent, after_ref or move.after, if_match=if_match)
    return batch.DeleteTask(task, if_match=if_match)


def _fields(body: dict[str, Any]) -> TaskFields:
    return TaskFields.of(TaskWrite.model_validate(body).model_dump())


def _ref_in(body: dict[str, Any], name: str) -> batch.Ref | None:
    """The ref a body's field holds, taken out of the body (which its model then reads as null)."""
    value = body.get(name)
    if not (isinstance(value, str) and value.startswith(REF_PREFIX)):
        return None
    body[name] = None
    return _ref(value, name)


def _task(value: str | None) -> batch.TaskRef:
    if value is None:
        raise ValidationFailed(FieldError("id", "Field required"))
    if value.startswith(REF_PREFIX):
        return _ref(value, "id")
    try:
        return _UUID.validate_python(value)
    except ValidationError as error:
        raise ValidationFailed(FieldError("id", field_errors(error)[0].message)) from error


def _ref(value: str, field: str) -> batch.Ref:
    name = value.removeprefix(REF_PREFIX)
    if not name:
        raise ValidationFailed(FieldError(field, f'must name a ref after "{REF_PREFIX}"'))
    return batch.Ref(name)


def _absent(value: object, field: str, message: str) -> None:
    if value is not None:
        raise ValidationFailed(FieldError(field, message))
