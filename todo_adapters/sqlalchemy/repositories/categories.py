"""Categories on SQLAlchemy Core (`todo_core.ports.CategoryRepository`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import BindParameter, bindparam, delete, insert, select, update

from todo_adapters.sqlalchemy.execution import DuplicateKey, Executor
from todo_adapters.sqlalchemy.mapping import CATEGORIES, FIXED
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers, bury, seq_of
from todo_adapters.sqlalchemy.tables import categories
from todo_core.category import Category
from todo_core.errors import Conflict
from todo_core.sync import ChangeKind

_USER: BindParameter[str] = bindparam("user_id")


_CATEGORY = select(*CATEGORIES.columns).where(
    categories.c.user_id == _USER, categories.c.id == bindparam("category_id")
)
_CATEGORIES = (
    select(*CATEGORIES.columns).where(categories.c.user_id == _USER).order_by(categories.c.name_key, categories.c.id)
)
_INSERT_CATEGORY = insert(categories).values(change_seq=seq_of("b_user_id"))
_UPDATE_CATEGORY = (
    update(categories)
    .where(categories.c.user_id == bindparam("b_user_id"), categories.c.id == bindparam("b_id"))
    .values(change_seq=seq_of("b_user_id"))
)
_DELETE_CATEGORY = delete(categories).where(categories.c.user_id == _USER, categories.c.id == bindparam("category_id"))


class SqlCategoryRepository:
    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def get(self, user_id: str, category_id: UUID) -> Category | None:
        await self._changes.take(user_id)
        rows = await self._sql.rows(_CATEGORY, {"user_id": user_id, "category_id": category_id})
        return CATEGORIES.from_row(rows[0]) if rows else None

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        await self._changes.take(user_id)
        return [CATEGORIES.from_row(row) for row in await self._sql.rows(_CATEGORIES, {"user_id": user_id})]

    async def add(self, category: Category) -> None:
        await self._changes.write(category.user_id)
        async with self._unique_name(category):
            await self._sql.run(_INSERT_CATEGORY, {**CATEGORIES.to_row(category), "b_user_id": category.user_id})

    async def update(self, category: Category) -> None:
        await self._changes.write(category.user_id)
        changed = {name: value for name, value in CATEGORIES.to_row(category).items() if name not in FIXED}
        async with self._unique_name(category):
            await self._sql.run(_UPDATE_CATEGORY, {"b_user_id": category.user_id, "b_id": category.id, **changed})

    async def remove(self, user_id: str, category_id: UUID, now: datetime) -> bool:
        await self._changes.take(user_id)
        if await self._sql.count(_DELETE_CATEGORY, {"user_id": user_id, "category_id": category_id}) != 1:
            return False
        await bury(self._sql, self._changes, user_id, category_id, ChangeKind.CATEGORY, now)
        return True

    @contextlib.asynccontextmanager
    async def _unique_name(self, category: Category) -> AsyncIterator[None]:
        try:
            async with self._sql.guarded():
                yield
        except DuplicateKey as error:
            raise Conflict(f"you already have a category named {category.fields.name!r}") from error
