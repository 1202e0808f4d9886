"""Use cases on tasks. A command stages its changes in the unit of work it is given (entered)
and commits nothing: the runner (`todo_core.commands`) enters, runs and commits, so one command
runs alone or as a step of a batch alike. A change that changes nothing returns `Unchanged`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core import ordering, subtasks
from todo_core.clock import Clock
from todo_core.commands import Unchanged
from todo_core.errors import FieldError, NotFound, PreconditionFailed, TooManyTasks, ValidationFailed
from todo_core.ports import TaskViews, UnitOfWork
from todo_core.query import TaskQuery
from todo_core.task import Task, TaskFields
from todo_core.timestamps import as_utc
from todo_core.views import VersionedView, ViewPage

REMINDERS_MAX = 200


class KeepParent:
    """The parent a move keeps when it names none."""


KEEP_PARENT = KeepParent()


async def create_task(
    uow: UnitOfWork, clock: Clock, user_id: str, fields: TaskFields, *, at_most: int | None = None
) -> Task:
    """Create a task for the user, last among its siblings.

    :raises ValidationFailed: a field breaks a rule, or the category or the parent is not one of
        the user's, or the parent is too deep.
    :raises TooManyTasks: the user has `at_most` tasks already.
    """
    await check_task_room(uow, user_id, 1, at_most)
    fields = (await _in_a_zone(uow, user_id, fields)).validated()
    await _check_category(uow, user_id, fields.category_id)
    if fields.parent_id is not None:
        await _check_parent(uow, user_id, None, fields.parent_id)
    position = ordering.after(await uow.tasks.last_position(user_id, fields.parent_id))
    task = Task.new(user_id, fields, clock.now(), position)
    await uow.tasks.add(task)
    return task


async def check_task_room(uow: UnitOfWork, user_id: str, more: int, at_most: int | None) -> None:
    """:raises TooManyTasks: `more` tasks would take the user past `at_most` (None: no cap)."""
    if at_most is not None and more > 0 and await uow.tasks.count_for_user(user_id, up_to=at_most) + more > at_most:
        raise TooManyTasks(at_most)


async def get_task(views: TaskViews, user_id: str, task_id: UUID) -> VersionedView:
    """:raises NotFound: the user has no task with this id."""
    found = await views.get(user_id, task_id)
    if found is None:
        raise NotFound("task")
    return found


async def list_tasks(views: TaskViews, user_id: str, query: TaskQuery) -> ViewPage:
    """One page of the user's tasks, filtered and sorted as asked (`query` already validated)."""
    return await views.list_for_user(user_id, query)


async def replace_task(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    fields: TaskFields,
    *,
    if_match: int | None = None,
) -> Task | Unchanged[Task]:
    """Replace every writable field of the user's task (a `time_zone` of None: the user's setting).

    :raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: `if_match` is given and is not the current version.
    :raises ValidationFailed: a field breaks a rule.
    """
    return await _change(uow, clock, user_id, task_id, lambda _: fields, if_match)


async def patch_task(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    changes: Mapping[str, Any],
    *,
    if_match: int | None = None,
) -> Task | Unchanged[Task]:
    """Apply a JSON merge patch (absent: unchanged, None: cleared) to the user's task. A
    `time_zone` of None is the user's setting, as for a new task.

    :raises NotFound, PreconditionFailed, ValidationFailed: as `replace_task`.
    """
    return await _change(uow, clock, user_id, task_id, lambda current: current.merged(changes), if_match)


async def move_task(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    *,
    parent_id: UUID | KeepParent | None = KEEP_PARENT,
    after: UUID | None = None,
    if_match: int | None = None,
) -> Task | Unchanged[Task]:
    """Put the task right after its sibling `after` (None: first) under `parent_id` (None: at
    the top level; `KEEP_PARENT`: where it is). Only the task is written, unless the siblings'
    positions have grown too long, when they are spread out again (a rebalance).

    :raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: `if_match` is given and is not the current version.
    :raises ValidationFailed: `parent_id` breaks a rule of subtasks, or `after` is the task
        itself or no task under that parent.
    """
    task = await _held(uow, user_id, task_id, if_match)
    parent = task.fields.parent_id if isinstance(parent_id, KeepParent) else parent_id
    if parent != task.fields.parent_id and parent is not None:
        await _check_parent(uow, user_id, task_id, parent)
    previous = await _previous_sibling(uow, user_id, task_id, parent, after)
    following = await uow.tasks.children(user_id, parent, after=previous, limit=2)
    following_positions = [sibling.position for sibling in following if sibling.id != task_id]
    following_position = following_positions[0] if following_positions else None
    stays = parent == task.fields.parent_id and _sits_between(task.position, previous, following_position)
    if stays:
        return Unchanged(task)  # already there: no new version
    now = clock.now()
    position = ordering.between(previous, following_position)
    if position is None:
        position = await _rebalance(uow, user_id, task_id, parent, after, now)
    if parent == task.fields.parent_id:
        moved = task.moved(position, now)
    else:
        moved = dataclasses.replace(
            task.with_fields(dataclasses.replace(task.fields, parent_id=parent), now), position=position
        )
    await uow.tasks.update(moved)
    return moved


async def complete_task(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    completed: bool | None = None,
    *,
    if_match: int | None = None,
) -> Task | Unchanged[Task]:
    """Mark the task completed or not; None toggles it. Completing a repeating task creates its
    next occurrence in the same transaction, once per task however often it is toggled.

    :raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: `if_match` is given and is not the current version.
    """

    def completion(current: TaskFields) -> TaskFields:
        done = not current.completed if completed is None else completed
        return dataclasses.replace(current, completed=done)

    return await _change(uow, clock, user_id, task_id, completion, if_match)


async def delete_task(
    uow: UnitOfWork, clock: Clock, user_id: str, task_id: UUID, *, if_match: int | None = None
) -> None:
    """Delete the task and its whole subtree (its steps, their steps, ...) at once.

    :raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: `if_match` is given and is not the current version."""
    now = clock.now()
    if not await uow.tasks.remove(user_id, task_id, now, version=if_match):
        current = await _existing(uow, user_id, task_id)
        raise PreconditionFailed(current.version)  # it exists, so the version did not match
    for step in await uow.tasks.descendants(user_id, task_id):
        await uow.tasks.remove(user_id, step.id, now)


async def tag_counts(uow: UnitOfWork, user_id: str) -> Sequence[tuple[str, int]]:
    """The user's tags with how many tasks carry each, most used first."""
    async with uow:
        return await uow.tasks.tag_counts(user_id)


async def due_reminders(
    uow: UnitOfWork, clock: Clock, user_id: str, until: datetime | None = None, limit: int = REMINDERS_MAX
) -> Sequence[Task]:
    """The user's open tasks whose reminder is due by `until` (default: now), soonest first.

    :raises ValidationFailed: `until` has no offset.
    """
    moment = as_utc("until", until) if until is not None else clock.now()
    if isinstance(moment, FieldError):
        raise ValidationFailed(moment)
    async with uow:
        return await uow.tasks.due_reminders(user_id, moment, limit)


async def _change(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    change: Callable[[TaskFields], TaskFields],
    if_match: int | None,
) -> Task | Unchanged[Task]:
    task = await _held(uow, user_id, task_id, if_match)
    fields = (await _in_a_zone(uow, user_id, change(task.fields))).validated()
    if fields == task.fields:
        return Unchanged(task)  # nothing changes: no new version
    return await _stage(uow, clock, task, fields)


async def _stage(uow: UnitOfWork, clock: Clock, task: Task, fields: TaskFields) -> Task:
    """Stage the task's next version with these (validated) fields. A new parent puts it last
    among its new siblings. Completing it completes its open steps, and gives its series its
    next occurrence, with fresh open copies of its steps."""
    user_id = task.user_id
    if fields.category_id != task.fields.category_id:
        await _check_category(uow, user_id, fields.category_id)
    now = clock.now()
    updated = task.with_fields(fields, now)
    if fields.parent_id != task.fields.parent_id:
        if fields.parent_id is not None:
            await _check_parent(uow, user_id, task.id, fields.parent_id)
        position = ordering.after(await uow.tasks.last_position(user_id, fields.parent_id))
        updated = dataclasses.replace(updated, position=position)
    if fields.completed and not task.fields.completed:
        steps = await uow.tasks.descendants(user_id, task.id)
        for step in steps:
            if not step.fields.completed:
                await uow.tasks.update(step.with_fields(dataclasses.replace(step.fields, completed=True), now))
        if task.next_occurrence_id is None:
            last = await uow.tasks.last_position(user_id, fields.parent_id)
            following = updated.next_occurrence(now, ordering.after(max(last or "", updated.position)))
            if following is not None:
                await uow.tasks.add(following)
                await _copy_steps(uow, task.id, following.id, steps, now)
                updated = dataclasses.replace(updated, next_occurrence_id=following.id)
    await uow.tasks.update(updated)
    return updated


async def _copy_steps(uow: UnitOfWork, task_id: UUID, copy_id: UUID, steps: Sequence[Task], now: datetime) -> None:
    """Give the copy of a task open copies of its steps, in the same structure and order."""
    copies = {task_id: copy_id}
    for step in steps:  # each parent before its children
        parent = copies[step.fields.parent_id] if step.fields.parent_id is not None else None
        fields = dataclasses.replace(step.fields, completed=False, parent_id=parent)
        copy = Task.new(step.user_id, fields, now, step.position)
        copies[step.id] = copy.id
        await uow.tasks.add(copy)


async def _check_parent(uow: UnitOfWork, user_id: str, task_id: UUID | None, parent_id: UUID) -> None:
    """:raises ValidationFailed: as `subtasks.check_parent`, or the parent is not the user's."""
    if await uow.tasks.get(user_id, parent_id) is None:
        raise subtasks.not_yours()
    levels_below = 0
    if task_id is not None:
        levels_below = subtasks.height(task_id, await uow.tasks.descendants(user_id, task_id))
    ancestors = await uow.tasks.ancestors(user_id, parent_id)
    subtasks.check_parent(task_id, parent_id, ancestors, levels_below=levels_below)


async def _previous_sibling(
    uow: UnitOfWork, user_id: str, task_id: UUID, parent: UUID | None, after: UUID | None
) -> str | None:
    """The position of the sibling a move puts the task after (None: first).

    :raises ValidationFailed: `after` is the task itself, or no task under `parent`."""
    if after is None:
        return None
    if after == task_id:
        raise ValidationFailed(FieldError("after", "cannot be the task itself"))
    sibling = await uow.tasks.get(user_id, after)
    if sibling is None or sibling.fields.parent_id != parent:
        raise ValidationFailed(FieldError("after", "is not one of your tasks under the parent it moves to"))
    return sibling.position


def _sits_between(position: str, previous: str | None, following: str | None) -> bool:
    return (previous is None or previous < position) and (following is None or position < following)


async def _rebalance(
    uow: UnitOfWork, user_id: str, task_id: UUID, parent: UUID | None, after: UUID | None, now: datetime
) -> str:
    """Spread the positions of the siblings under `parent` evenly, with the task in its new
    place (right after `after`, or first), and return the task's new position. Every sibling
    whose position changes is written."""
    siblings = [sibling for sibling in await uow.tasks.children(user_id, parent) if sibling.id != task_id]
    place = 0 if after is None else next(i for i, sibling in enumerate(siblings) if sibling.id == after) + 1
    positions = list(ordering.spread(len(siblings) + 1))
    mine = positions.pop(place)
    for sibling, position in zip(siblings, positions, strict=True):
        if sibling.position != position:
            await uow.tasks.update(sibling.moved(position, now))
    return mine


async def _in_a_zone(uow: UnitOfWork, user_id: str, fields: TaskFields) -> TaskFields:
    """The fields with the user's time zone setting where they name no zone."""
    if fields.time_zone is not None:
        return fields
    settings = await uow.settings.get(user_id)
    return dataclasses.replace(fields, time_zone=settings.time_zone)


async def _held(uow: UnitOfWork, user_id: str, task_id: UUID, if_match: int | None) -> Task:
    """The user's task, at version `if_match` when given: no change is made from a version that
    is no longer current (the user's turn, see `UnitOfWork`, keeps it current until commit).

    :raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: it is not at version `if_match`.
    """
    task = await uow.tasks.get(user_id, task_id)
    if task is None:
        raise NotFound("task")
    if if_match is not None:
        _check_version(task, if_match)
    return task


async def _existing(uow: UnitOfWork, user_id: str, task_id: UUID) -> Task:
    task = await uow.tasks.get(user_id, task_id)
    if task is None:
        raise NotFound("task")
    return task


def _check_version(task: Task, expected: int) -> None:
    if task.version != expected:
        raise PreconditionFailed(task.version)


async def _check_category(uow: UnitOfWork, user_id: str, category_id: UUID | None) -> None:
    # Another user's category and no category at all read the same: existence is not revealed.
    if category_id is not None and await uow.categories.get(user_id, category_id) is None:
        raise ValidationFailed(FieldError("category_id", "is not one of your categories"))
