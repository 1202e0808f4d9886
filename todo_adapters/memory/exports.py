"""The read side of export in memory (`todo_core.ports.ExportReader`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from todo_adapters.memory.tables import InMemoryStore
from todo_core import subtasks
from todo_core.category import Category
from todo_core.portability import LEVELS, ExportPage, StructurePosition
from todo_core.task import Task
from todo_core.user_settings import UserSettings


class InMemoryAccountSnapshot:
    """A user's data as committed when the snapshot was taken (a copy of the user's rows)."""

    def __init__(self, store: InMemoryStore, user_id: str) -> None:
        self._settings = store.settings.get(user_id, UserSettings())
        self._categories = [category for (owner, _), category in store.categories.items() if owner == user_id]
        tasks = {task.id: task for (owner, _), task in store.tasks.items() if owner == user_id}
        self._ordered: list[tuple[tuple[object, ...], StructurePosition, Task]] = []
        for task in tasks.values():
            level, parent = 0, task.fields.parent_id
            while parent is not None and parent in tasks and level < subtasks.WALK_BOUND:
                level, parent = level + 1, tasks[parent].fields.parent_id
            if parent is None and level < LEVELS:
                position = StructurePosition.of(level, task)
                self._ordered.append((_structure_key(position), position, task))
        self._ordered.sort(key=lambda entry: entry[0])

    async def settings(self) -> UserSettings:
        return self._settings

    async def categories(self) -> Sequence[Category]:
        return sorted(self._categories, key=lambda category: (category.name_key, category.id))

    async def tasks(self, after: StructurePosition | None, limit: int) -> ExportPage:
        key = None if after is None else _structure_key(after)
        later = [entry for entry in self._ordered if key is None or entry[0] > key]
        page = later[:limit]
        return ExportPage([task for _, _, task in page], page[-1][1] if len(later) > limit else None)


def _structure_key(position: StructurePosition) -> tuple[object, ...]:
    parent = position.parent_id.int if position.parent_id is not None else -1
    return (position.level, parent, position.position, position.id.int)


class InMemoryExportReader:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    @asynccontextmanager
    async def snapshot(self, user_id: str) -> AsyncIterator[InMemoryAccountSnapshot]:
        yield InMemoryAccountSnapshot(self._store, user_id)
