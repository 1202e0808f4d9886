"""The read side of tasks in memory (`todo_core.ports.TaskViews`)."""

from __future__ import annotations

from uuid import UUID

from todo_adapters.memory.tables import InMemoryStore
from todo_core.query import TaskQuery
from todo_core.views import VersionedView, ViewPage, task_view


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
