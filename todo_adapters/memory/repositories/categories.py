"""Categories in memory (`todo_core.ports.CategoryRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from todo_adapters.memory.tables import Staging, Turns
from todo_core.category import Category
from todo_core.errors import Conflict


class InMemoryCategoryRepository:
    def __init__(self, store: Staging, locks: Turns) -> None:
        self._store = store
        self._locks = locks

    async def get(self, user_id: str, category_id: UUID) -> Category | None:
        await self._locks.take_user(user_id)
        return self._store.categories.get((user_id, category_id))

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        await self._locks.take_user(user_id)
        owned = [category for (owner, _), category in self._store.categories.items() if owner == user_id]
        return sorted(owned, key=lambda category: (category.name_key, category.id))

    async def add(self, category: Category) -> None:
        await self._locks.take_user(category.user_id)
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def update(self, category: Category) -> None:
        await self._locks.take_user(category.user_id)
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def remove(self, user_id: str, category_id: UUID, now: datetime) -> bool:
        await self._locks.take_user(user_id)
        if self._store.categories.pop((user_id, category_id), None) is None:
            return False
        self._store.deleted_at[(user_id, category_id)] = now
        return True

    def check_names_free(self) -> None:
        """:raises Conflict: a category this unit of work wrote has a name taken since."""
        for category in self._store.categories.written.values():
            if category is not None:
                self._check_name_free(category)

    def _check_name_free(self, category: Category) -> None:
        for (owner, other_id), other in self._store.categories.items():
            if owner == category.user_id and other_id != category.id and other.name_key == category.name_key:
                raise Conflict(f"you already have a category named {other.fields.name!r}")
