"""Where task events enter the outbox. Every unit of work hands out its task repository wrapped
in `StagedTasks`, which keeps each task change staged through it (`todo_core.task_changes`);
the runner (`todo_core.commands`) then writes their events with `record_events`, in the same
transaction, before it commits. So every command, whatever route it came by (a single request,
a batch, an idempotent retry, the MCP tools), records each of its events once.

- added → `task.created`; updated → `task.completed` when it completes the task (it was read
  open in this unit of work), otherwise `task.updated`; removed → `task.deleted` (its data:
  `id`, `user_id`, `deleted_at`).
- `add_many` (an import of a whole account) stages no events: an import is a restore, not a
  stream of news, and thousands of deliveries per endpoint would bury what matters.
- Taking a deleted category off its tasks (`clear_category`) stages no events either.

Reminders: an open task whose `remind_at` is in the future gets a reminder due at that instant,
written with the task; when it falls due, one process claims it and makes from it the
`reminder.due` deliveries and the event streams' `reminder` (`todo_core/use_cases/webhooks.py`).
Every change of the task first cancels the one not yet due, then schedules it again from the new
version: a completed or deleted task, or a reminder moved or cleared, sends nothing at the old time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from todo_core.ids import new_id
from todo_core.ports.repositories import TaskRepository, WebhookRepository
from todo_core.task import Task
from todo_core.task_changes import TaskAdded, TaskChange, TaskRemoved, TaskUpdated
from todo_core.views import task_view
from todo_core.webhooks import REMINDER_DUE, TASK_COMPLETED, TASK_CREATED, TASK_DELETED, TASK_UPDATED, event_body


async def record_events(changes: Sequence[TaskChange], outbox: WebhookRepository) -> None:
    """Stage, in the outbox, the events of these task changes (in their order) and the
    reminders they schedule or cancel."""
    for change in changes:
        match change:
            case TaskAdded(task=task):
                await _announce(outbox, task.user_id, TASK_CREATED, task.updated_at, task_view(task))
                await _schedule_reminder(outbox, task)
            case TaskUpdated(task=task, before=before):
                completes = task.fields.completed and not (before is not None and before.fields.completed)
                event_type = TASK_COMPLETED if completes else TASK_UPDATED
                await _announce(outbox, task.user_id, event_type, task.updated_at, task_view(task))
                if before is None or before.fields.remind_at is not None:
                    await outbox.cancel_reminders(task.user_id, task.id)
                await _schedule_reminder(outbox, task)
            case TaskRemoved(user_id=user_id, task_id=task_id, at=at):
                await outbox.cancel_reminders(user_id, task_id)
                data: dict[str, object] = {"id": task_id, "user_id": user_id, "deleted_at": at}
                await _announce(outbox, user_id, TASK_DELETED, at, data)


async def _schedule_reminder(outbox: WebhookRepository, task: Task) -> None:
    remind_at = task.fields.remind_at
    if remind_at is None or task.fields.completed or remind_at <= task.updated_at:
        return
    body = event_body(REMINDER_DUE, remind_at, task_view(task))
    await outbox.schedule_reminder(task.user_id, task.id, new_id(), body, due_at=remind_at, now=task.updated_at)


async def _announce(
    outbox: WebhookRepository, user_id: str, event_type: str, moment: datetime, data: dict[str, object]
) -> None:
    await outbox.enqueue(user_id, event_type, new_id(), event_body(event_type, moment, data), moment)


class StagedTasks:
    """A `TaskRepository` that keeps, in order, each task change staged through it."""

    def __init__(self, tasks: TaskRepository) -> None:
        self._tasks = tasks
        self._staged: list[TaskChange] = []
        #: Each task read in this unit of work as it was then (and each staged since, as staged):
        #: what an update is compared with. A writing unit of work holds its user's change number
        #: before it reads, so what it read is what it changes.
        self._before: dict[UUID, Task] = {}

    def collect(self) -> list[TaskChange]:
        """The changes staged since the last call, in order."""
        staged, self._staged = self._staged, []
        return staged

    def _held(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            self._before.setdefault(task.id, task)

    async def get(self, user_id: str, task_id: UUID) -> Task | None:
        task = await self._tasks.get(user_id, task_id)
        if task is not None:
            self._held([task])
        return task

    async def ancestors(self, user_id: str, task_id: UUID) -> Sequence[UUID]:
        return await self._tasks.ancestors(user_id, task_id)

    async def descendants(self, user_id: str, task_id: UUID) -> Sequence[Task]:
        found = await self._tasks.descendants(user_id, task_id)
        self._held(found)
        return found

    async def children(
        self,
        user_id: str,
        parent_id: UUID | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Task]:
        found = await self._tasks.children(user_id, parent_id, after=after, limit=limit)
        self._held(found)
        return found

    async def count_for_user(self, user_id: str, *, up_to: int) -> int:
        return await self._tasks.count_for_user(user_id, up_to=up_to)

    async def last_position(self, user_id: str, parent_id: UUID | None) -> str | None:
        return await self._tasks.last_position(user_id, parent_id)

    async def add(self, task: Task) -> None:
        await self._tasks.add(task)
        self._before[task.id] = task
        self._staged.append(TaskAdded(task))

    async def add_many(self, new: Sequence[Task]) -> None:
        await self._tasks.add_many(new)

    async def update(self, task: Task) -> None:
        await self._tasks.update(task)
        before = self._before.get(task.id)
        self._before[task.id] = task
        self._staged.append(TaskUpdated(task, before))

    async def remove(self, user_id: str, task_id: UUID, now: datetime, *, version: int | None = None) -> bool:
        removed = await self._tasks.remove(user_id, task_id, now, version=version)
        if removed:
            self._staged.append(TaskRemoved(user_id, task_id, now))
        return removed

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._tasks.clear_category(user_id, category_id, now)

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        return await self._tasks.tag_counts(user_id)

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        return await self._tasks.due_reminders(user_id, until, limit)
