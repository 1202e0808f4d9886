"""Repositories on SQLAlchemy Core: rows map straight to entities, no ORM objects in between.

Every statement filters by `user_id`; a row of another user is never read, written or counted.
Statements are built once, here, and run with each call's values by an `Executor` (building a
statement costs more than running it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import BindParameter, bindparam, delete, func, insert, select, update

from todo_adapters.sqlalchemy.execution import DuplicateKey, Executor
from todo_adapters.sqlalchemy.mapping import CATEGORIES, TASKS
from todo_adapters.sqlalchemy.tables import categories, task_tags, tasks
from todo_core.category import Category
from todo_core.errors import Conflict
from todo_core.task import Task

#: Columns an update never changes: the key, and when the row was made.
_FIXED = frozenset({"user_id", "id", "created_at"})

_USER: BindParameter[str] = bindparam("user_id")
_TASK = select(*TASKS.columns).where(tasks.c.user_id == _USER, tasks.c.id == bindparam("task_id"))
_TASK_FOR_UPDATE = _TASK.with_for_update()  # SQLite ignores it: its write transactions are serial
_INSERT_TASK = insert(tasks)
# Where-clause values are named apart from the columns an update sets.
_UPDATE_TASK = update(tasks).where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.id == bindparam("b_id"))
_DELETE_TASK = delete(tasks).where(tasks.c.user_id == _USER, tasks.c.id == bindparam("task_id"))
_DELETE_TASK_AT = _DELETE_TASK.where(tasks.c.version == bindparam("version"))
_CLEAR_CATEGORY = (
    update(tasks)
    .where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.category_id == bindparam("b_category_id"))
    .values(category_id=None, updated_at=bindparam("b_now", type_=tasks.c.updated_at.type), version=tasks.c.version + 1)
)
_DUE_REMINDERS = (
    select(*TASKS.columns)
    .where(
        tasks.c.user_id == _USER,
        tasks.c.remind_at <= bindparam("until", type_=tasks.c.remind_at.type),
        tasks.c.completed.is_(False),
    )
    .order_by(tasks.c.remind_at, tasks.c.id)
    .limit(bindparam("limit"))
)
_INSERT_TAGS = insert(task_tags)
_DELETE_TAGS = delete(task_tags).where(task_tags.c.user_id == _USER, task_tags.c.task_id == bindparam("task_id"))
_TAGGED = func.count().label("count")
_TAG_COUNTS = (
    select(func.min(task_tags.c.tag), _TAGGED)
    .where(task_tags.c.user_id == _USER)
    .group_by(task_tags.c.tag_key)
    .order_by(_TAGGED.desc(), task_tags.c.tag_key)
)

_CATEGORY = select(*CATEGORIES.columns).where(
    categories.c.user_id == _USER, categories.c.id == bindparam("category_id")
)
_CATEGORY_FOR_UPDATE = _CATEGORY.with_for_update()
_CATEGORY_FOR_SHARE = _CATEGORY.with_for_update(read=True)
_CATEGORIES = (
    select(*CATEGORIES.columns).where(categories.c.user_id == _USER).order_by(categories.c.name_key, categories.c.id)
)
_INSERT_CATEGORY = insert(categories)
_UPDATE_CATEGORY = update(categories).where(
    categories.c.user_id == bindparam("b_user_id"), categories.c.id == bindparam("b_id")
)
_DELETE_CATEGORY = delete(categories).where(categories.c.user_id == _USER, categories.c.id == bindparam("category_id"))


class SqlTaskRepository:
    def __init__(self, executor: Executor) -> None:
        self._sql = executor
        # The tags of the tasks this transaction has read, so that an update that keeps them
        # (a completion, a new title) does not rewrite the user's tag index.
        self._tags_read: dict[tuple[str, UUID], tuple[str, ...]] = {}

    async def get(self, user_id: str, task_id: UUID, *, for_update: bool = False) -> Task | None:
        statement = _TASK_FOR_UPDATE if for_update else _TASK
        rows = await self._sql.rows(statement, {"user_id": user_id, "task_id": task_id})
        if not rows:
            return None
        task = TASKS.from_row(rows[0])
        self._tags_read[(user_id, task_id)] = task.fields.tags
        return task

    async def add(self, task: Task) -> None:
        await self._sql.run(_INSERT_TASK, TASKS.to_row(task))
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def update(self, task: Task) -> None:
        changed = {name: value for name, value in TASKS.to_row(task).items() if name not in _FIXED}
        await self._sql.run(_UPDATE_TASK, {"b_user_id": task.user_id, "b_id": task.id, **changed})
        if self._tags_read.get((task.user_id, task.id)) == task.fields.tags:
            return
        await self._sql.run(_DELETE_TAGS, {"user_id": task.user_id, "task_id": task.id})
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def remove(self, user_id: str, task_id: UUID, *, version: int | None = None) -> bool:
        key = {"user_id": user_id, "task_id": task_id}
        if version is None:
            removed = await self._sql.count(_DELETE_TASK, key)
        else:
            removed = await self._sql.count(_DELETE_TASK_AT, {**key, "version": version})
        if removed != 1:
            return False
        await self._sql.run(_DELETE_TAGS, key)
        self._tags_read.pop((user_id, task_id), None)
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._sql.run(_CLEAR_CATEGORY, {"b_user_id": user_id, "b_category_id": category_id, "b_now": now})

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        return [(tag, n) for tag, n in await self._sql.rows(_TAG_COUNTS, {"user_id": user_id})]

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        rows = await self._sql.rows(_DUE_REMINDERS, {"user_id": user_id, "until": until, "limit": limit})
        return [TASKS.from_row(row) for row in rows]

    async def _write_tags(self, task: Task) -> None:
        if task.fields.tags:
            rows = [
                {"user_id": task.user_id, "task_id": task.id, "tag_key": key, "tag": tag}
                for tag, key in zip(task.fields.tags, task.tag_keys, strict=True)
            ]
            await self._sql.run(_INSERT_TAGS, rows)


class SqlCategoryRepository:
    def __init__(self, executor: Executor) -> None:
        self._sql = executor

    async def get(
        self, user_id: str, category_id: UUID, *, for_update: bool = False, for_share: bool = False
    ) -> Category | None:
        statement = _CATEGORY_FOR_UPDATE if for_update else _CATEGORY_FOR_SHARE if for_share else _CATEGORY
        rows = await self._sql.rows(statement, {"user_id": user_id, "category_id": category_id})
        return CATEGORIES.from_row(rows[0]) if rows else None

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        return [CATEGORIES.from_row(row) for row in await self._sql.rows(_CATEGORIES, {"user_id": user_id})]

    async def add(self, category: Category) -> None:
        async with self._unique_name(category):
            await self._sql.run(_INSERT_CATEGORY, CATEGORIES.to_row(category))

    async def update(self, category: Category) -> None:
        changed = {name: value for name, value in CATEGORIES.to_row(category).items() if name not in _FIXED}
        async with self._unique_name(category):
            await self._sql.run(_UPDATE_CATEGORY, {"b_user_id": category.user_id, "b_id": category.id, **changed})

    async def remove(self, user_id: str, category_id: UUID) -> bool:
        return await self._sql.count(_DELETE_CATEGORY, {"user_id": user_id, "category_id": category_id}) == 1

    @contextlib.asynccontextmanager
    async def _unique_name(self, category: Category) -> AsyncIterator[None]:
        try:
            async with self._sql.guarded():
                yield
        except DuplicateKey as error:
            raise Conflict(f"you already have a category named {category.fields.name!r}") from error
