"""Subtasks: a task may be a step of another of the same user's tasks, five levels at most.

The steps of a task are its children (`parent_id`), their steps its grandchildren, and so on:
its subtree. A task never sits below itself, and has at most `MAX_ANCESTORS` ancestors.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from todo_core.errors import FieldError, ValidationFailed
from todo_core.task import Task

#: A task with four ancestors is on the fifth level: the deepest there is.
MAX_ANCESTORS = 4
#: How far a walk up or down a stored tree may go: past any depth the rules allow, so that a
#: cycle they forbid could never make it loop.
WALK_BOUND = MAX_ANCESTORS + 2
FIELD = "parent_id"


def height(task_id: UUID, descendants: Sequence[Task]) -> int:
    """How many levels a task's subtree has below it (0 for a task without steps), from its
    descendants (parents listed before their children)."""
    depth = {task_id: 0}
    for task in descendants:
        parent = task.fields.parent_id
        if parent in depth:
            depth[task.id] = depth[parent] + 1
    return max(depth.values())


def check_parent(
    task_id: UUID | None,
    parent_id: UUID,
    parent_ancestors: Sequence[UUID],
    *,
    levels_below: int = 0,
) -> None:
    """Check that a task (None: one not made yet) with `levels_below` levels of steps under it
    may become a step of the user's task `parent_id`, whose ancestors are `parent_ancestors`.

    :raises ValidationFailed: the parent is the task itself or one of its steps, or the task or
        one of its steps would have more than `MAX_ANCESTORS` ancestors.
    """
    if task_id is not None and (parent_id == task_id or task_id in parent_ancestors):
        raise ValidationFailed(FieldError(FIELD, "cannot be the task itself or one of its steps"))
    if len(parent_ancestors) + 1 + levels_below > MAX_ANCESTORS:
        raise ValidationFailed(
            FieldError(FIELD, f"would nest too deep: a task has at most {MAX_ANCESTORS} ancestors (5 levels)")
        )


def not_yours() -> ValidationFailed:
    """The error for a parent that is not one of the user's tasks (another user's reads the same)."""
    return ValidationFailed(FieldError(FIELD, "is not one of your tasks"))
