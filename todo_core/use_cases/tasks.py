"""Use cases on tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core.clock import Clock
from todo_core.errors import FieldError, NotFound, PreconditionFailed, ValidationFailed
from todo_core.ports import TaskViews, UnitOfWork
from todo_core.query import TaskQuery
from todo_core.task import Task, TaskFields
from todo_core.timestamps import as_utc
from todo_core.views import VersionedView, ViewPage

REMINDERS_MAX = 200


async def create_task(uow: UnitOfWork, clock: Clock, user_id: str, fields: TaskFields) -> Task:
    """Create a task for the user.

    :raises ValidationFailed: a field breaks a rule, or the category is not one of the user's.
    """
    async with uow:
        fields = (await _in_a_zone(uow, user_id, fields)).validated()
        await _check_category(uow, user_id, fields.category_id)
        task = Task.new(user_id, fields, clock.now())
        await uow.tasks.add(task)
        await uow.commit()
    return task


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
) -> Task:
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
) -> Task:
    """Apply a JSON merge patch (absent: unchanged, None: cleared) to the user's task. A
    `time_zone` of None is the user's setting, as for a new task.

    :raises NotFound, PreconditionFailed, ValidationFailed: as `replace_task`.
    """
    return await _change(uow, clock, user_id, task_id, lambda current: current.merged(changes), if_match)


async def complete_task(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    task_id: UUID,
    completed: bool | None = None,
    *,
    if_match: int | None = None,
) -> Task:
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
    """:raises NotFound: the user has no task with this id.
    :raises PreconditionFailed: `if_match` is given and is not the current version."""
    async with uow:
        if not await uow.tasks.remove(user_id, task_id, clock.now(), version=if_match):
            current = await _existing(uow, user_id, task_id)
            raise PreconditionFailed(current.version)  # it exists, so the version did not match
        await uow.commit()


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
) -> Task:
    # `for_update`: a concurrent change of this task waits until this one is committed, then
    # reads what it committed; no change is made from a version that is no longer current.
    async with uow:
        task = await uow.tasks.get(user_id, task_id, for_update=True)
        if task is None:
            raise NotFound("task")
        if if_match is not None:
            _check_version(task, if_match)
        fields = (await _in_a_zone(uow, user_id, change(task.fields))).validated()
        if fields == task.fields:
            return task  # nothing changes: no new version
        updated = await _stage(uow, clock, task, fields)
        await uow.commit()
    return updated


async def _stage(uow: UnitOfWork, clock: Clock, task: Task, fields: TaskFields) -> Task:
    """Stage the task's next version with these (validated) fields, and the next occurrence
    of its series when this change completes it."""
    if fields.category_id != task.fields.category_id:
        await _check_category(uow, task.user_id, fields.category_id)
    now = clock.now()
    updated = task.with_fields(fields, now)
    if fields.completed and not task.fields.completed and task.next_occurrence_id is None:
        following = updated.next_occurrence(now)
        if following is not None:
            await uow.tasks.add(following)
            updated = dataclasses.replace(updated, next_occurrence_id=following.id)
    await uow.tasks.update(updated)
    return updated


async def _in_a_zone(uow: UnitOfWork, user_id: str, fields: TaskFields) -> TaskFields:
    """The fields with the user's time zone setting where they name no zone."""
    if fields.time_zone is not None:
        return fields
    settings = await uow.settings.get(user_id)
    return dataclasses.replace(fields, time_zone=settings.time_zone)


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
    # `for_share`: the category cannot be deleted before this task's change is committed.
    if category_id is not None and await uow.categories.get(user_id, category_id, for_share=True) is None:
        raise ValidationFailed(FieldError("category_id", "is not one of your categories"))
