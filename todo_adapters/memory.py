"""In-memory adapter: dictionaries behind the repository ports, for tests and the domain suite.

Each unit of work works on a copy of the store and swaps it in on commit, so an abandoned
unit of work leaves nothing behind, like a rolled-back transaction.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID

from todo_core.category import Category
from todo_core.errors import Conflict
from todo_core.query import TaskQuery
from todo_core.task import Task
from todo_core.views import VersionedView, ViewPage, task_view


@dataclasses.dataclass
class InMemoryStore:
    """Everything every user has: the shared state that units of work copy and replace."""

    tasks: dict[tuple[str, UUID], Task] = dataclasses.field(default_factory=dict)
    categories: dict[tuple[str, UUID], Category] = dataclasses.field(default_factory=dict)

    def copy(self) -> InMemoryStore:
        return InMemoryStore(dict(self.tasks), dict(self.categories))


class InMemoryTaskRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def get(self, user_id: str, task_id: UUID, *, for_update: bool = False) -> Task | None:
        return self._store.tasks.get((user_id, task_id))

    async def add(self, task: Task) -> None:
        self._store.tasks[(task.user_id, task.id)] = task

    async def update(self, task: Task) -> None:
        stored = self._store.tasks.get((task.user_id, task.id))
        if stored is None or stored.version != task.version - 1:
            raise Conflict("the task was changed by another request")
        self._store.tasks[(task.user_id, task.id)] = task

    async def remove(self, user_id: str, task_id: UUID, *, version: int | None = None) -> bool:
        stored = self._store.tasks.get((user_id, task_id))
        if stored is None or (version is not None and stored.version != version):
            return False
        del self._store.tasks[(user_id, task_id)]
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        for key, task in list(self._store.tasks.items()):
            if key[0] == user_id and task.fields.category_id == category_id:
                fields = dataclasses.replace(task.fields, category_id=None)
                self._store.tasks[key] = task.with_fields(fields, now)

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
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
        due = [
            task
            for (owner, _), task in self._store.tasks.items()
            if owner == user_id
            and not task.fields.completed
            and task.fields.remind_at is not None
            and task.fields.remind_at <= until
        ]
        return sorted(due, key=lambda task: (task.fields.remind_at, task.id))[:limit]


class InMemoryCategoryRepository:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def get(self, user_id: str, category_id: UUID, *, for_share: bool = False) -> Category | None:
        return self._store.categories.get((user_id, category_id))

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        owned = [category for (owner, _), category in self._store.categories.items() if owner == user_id]
        return sorted(owned, key=lambda category: (category.name_key, category.id))

    async def add(self, category: Category) -> None:
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def update(self, category: Category) -> None:
        stored = self._store.categories.get((category.user_id, category.id))
        if stored is None or stored.version != category.version - 1:
            raise Conflict("the category was changed by another request")
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def remove(self, user_id: str, category_id: UUID) -> bool:
        return self._store.categories.pop((user_id, category_id), None) is not None

    def _check_name_free(self, category: Category) -> None:
        for (owner, other_id), other in self._store.categories.items():
            if owner == category.user_id and other_id != category.id and other.name_key == category.name_key:
                raise Conflict(f"you already have a category named {other.fields.name!r}")


class InMemoryUnitOfWork:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        self._working = self._store.copy()
        self.tasks = InMemoryTaskRepository(self._working)
        self.categories = InMemoryCategoryRepository(self._working)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._working

    async def commit(self) -> None:
        committed = self._working.copy()
        self._store.tasks, self._store.categories = committed.tasks, committed.categories


class InMemoryTaskViews:
    """The read side on the committed store: what a fresh unit of work would see."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def list_for_user(self, user_id: str, query: TaskQuery) -> ViewPage:
        selected = [task for (owner, _), task in self._store.tasks.items() if owner == user_id and query.matches(task)]
        selected.sort(key=query.sort_key, reverse=query.sort.descending)
        if query.after is not None:
            after = query.after
            selected = [task for task in selected if query.comes_after(task, after)]
        page = selected[: query.limit]
        more = len(selected) > query.limit
        return ViewPage([task_view(task) for task in page], query.position_of(page[-1]) if more else None)

    async def get(self, user_id: str, task_id: UUID) -> VersionedView | None:
        task = self._store.tasks.get((user_id, task_id))
        return VersionedView(task_view(task), task.version) if task else None
