"""Tasks in memory (`todo_core.ports.TaskRepository`)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from todo_adapters.memory.tables import Staging, Turns
from todo_core import subtasks
from todo_core.task import Task


class InMemoryTaskRepository:
    def __init__(self, store: Staging, locks: Turns) -> None:
        self._store = store
        self._locks = locks

    async def get(self, user_id: str, task_id: UUID) -> Task | None:
        await self._locks.take_user(user_id)
        return self._store.tasks.get((user_id, task_id))

    async def ancestors(self, user_id: str, task_id: UUID) -> Sequence[UUID]:
        await self._locks.take_user(user_id)
        found: list[UUID] = []
        task = self._store.tasks.get((user_id, task_id))
        while task is not None and task.fields.parent_id is not None and len(found) < subtasks.WALK_BOUND:
            found.append(task.fields.parent_id)
            task = self._store.tasks.get((user_id, task.fields.parent_id))
        return found

    async def descendants(self, user_id: str, task_id: UUID) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        found: list[Task] = []
        level = [task_id]
        for _ in range(subtasks.WALK_BOUND):
            below = sorted(
                (
                    task
                    for (owner, _), task in self._store.tasks.items()
                    if owner == user_id and task.fields.parent_id in level
                ),
                key=lambda task: (task.position, task.id),
            )
            if not below:
                break
            found += below
            level = [task.id for task in below]
        return found

    async def children(
        self,
        user_id: str,
        parent_id: UUID | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        return sorted(
            (
                task
                for (owner, _), task in self._store.tasks.items()
                if owner == user_id and task.fields.parent_id == parent_id and (after is None or task.position > after)
            ),
            key=lambda task: (task.position, task.id),
        )[:limit]

    async def count_for_user(self, user_id: str, *, up_to: int) -> int:
        await self._locks.take_user(user_id)
        return min(up_to, sum(1 for owner, _ in self._store.tasks if owner == user_id))

    async def last_position(self, user_id: str, parent_id: UUID | None) -> str | None:
        await self._locks.take_user(user_id)
        positions = [
            task.position
            for (owner, _), task in self._store.tasks.items()
            if owner == user_id and task.fields.parent_id == parent_id
        ]
        return max(positions, default=None)

    async def add(self, task: Task) -> None:
        await self._locks.take_user(task.user_id)
        self._store.tasks[(task.user_id, task.id)] = task

    async def add_many(self, new: Sequence[Task]) -> None:
        for task in new:
            await self.add(task)

    async def update(self, task: Task) -> None:
        await self._locks.take_user(task.user_id)
        self._store.tasks[(task.user_id, task.id)] = task

    async def remove(self, user_id: str, task_id: UUID, now: datetime, *, version: int | None = None) -> bool:
        await self._locks.take_user(user_id)
        stored = self._store.tasks.get((user_id, task_id))
        if stored is None or (version is not None and stored.version != version):
            return False
        del self._store.tasks[(user_id, task_id)]
        self._store.deleted_at[(user_id, task_id)] = now
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._locks.take_user(user_id)
        for key, task in list(self._store.tasks.items()):
            if key[0] == user_id and task.fields.category_id == category_id:
                fields = dataclasses.replace(task.fields, category_id=None)
                self._store.tasks[key] = task.with_fields(fields, now)

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        await self._locks.take_user(user_id)
        # Spellings differ in case only; each tag shows as its least spelling, as SQL's min().
        counts: Counter[str] = Counter()
        shown: dict[str, str] = {}
        for (owner, _), task in self._store.tasks.items():
            if owner == user_id:
                for tag, key in zip(task.fields.tags, task.tag_keys, strict=True):
                    counts[key] += 1
                    shown[key] = min(shown.get(key, tag), tag)
        return [(shown[key], n) for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        due = [
            task
            for (owner, _), task in self._store.tasks.items()
            if owner == user_id
            and not task.fields.completed
            and task.fields.remind_at is not None
            and task.fields.remind_at <= until
        ]
        return sorted(due, key=lambda task: (task.fields.remind_at, task.id))[:limit]
