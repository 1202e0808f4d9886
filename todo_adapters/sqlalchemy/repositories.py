"""Repositories on SQLAlchemy Core: rows map straight to entities, no ORM objects in between.

Every statement filters by `user_id`; a row of another user is never read, written or counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_adapters.sqlalchemy.mapping import CATEGORIES, TASKS
from todo_adapters.sqlalchemy.tables import categories, task_tags, tasks
from todo_core.category import Category
from todo_core.errors import Conflict
from todo_core.task import Task

# Statements built once; each call binds its values (building a statement costs more than
# running it).
_TASK = select(*TASKS.columns).where(tasks.c.user_id == bindparam("user_id"), tasks.c.id == bindparam("task_id"))
_TASK_FOR_UPDATE = _TASK.with_for_update()  # SQLite ignores it: its write transactions are serial
_INSERT_TASK = insert(tasks)
_UPDATE_TASK = update(tasks).where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.id == bindparam("b_id"))
_INSERT_TAGS = insert(task_tags)
_DELETE_TAGS = delete(task_tags).where(
    task_tags.c.user_id == bindparam("user_id"), task_tags.c.task_id == bindparam("task_id")
)
#: Columns an update never changes: the key, and when the row was made.
_FIXED = frozenset({"user_id", "id", "created_at"})


class SqlTaskRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        # The tags of the tasks this transaction has read, so that an update that keeps them
        # (a completion, a new title) does not rewrite the user's tag index.
        self._tags_read: dict[tuple[str, UUID], tuple[str, ...]] = {}

    async def get(self, user_id: str, task_id: UUID, *, for_update: bool = False) -> Task | None:
        statement = _TASK_FOR_UPDATE if for_update else _TASK
        row = (await self._connection.execute(statement, {"user_id": user_id, "task_id": task_id})).first()
        if row is None:
            return None
        task = TASKS.from_row(row)
        self._tags_read[(user_id, task_id)] = task.fields.tags
        return task

    async def add(self, task: Task) -> None:
        await self._connection.execute(_INSERT_TASK, TASKS.to_row(task))
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def update(self, task: Task) -> None:
        changed = {name: value for name, value in TASKS.to_row(task).items() if name not in _FIXED}
        await self._connection.execute(_UPDATE_TASK, {"b_user_id": task.user_id, "b_id": task.id, **changed})
        if self._tags_read.get((task.user_id, task.id)) == task.fields.tags:
            return
        await self._connection.execute(_DELETE_TAGS, {"user_id": task.user_id, "task_id": task.id})
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def remove(self, user_id: str, task_id: UUID, *, version: int | None = None) -> bool:
        statement = delete(tasks).where(tasks.c.user_id == user_id, tasks.c.id == task_id)
        if version is not None:
            statement = statement.where(tasks.c.version == version)
        if (await self._connection.execute(statement)).rowcount != 1:
            return False
        await self._connection.execute(_DELETE_TAGS, {"user_id": user_id, "task_id": task_id})
        self._tags_read.pop((user_id, task_id), None)
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._connection.execute(
            update(tasks)
            .where(tasks.c.user_id == user_id, tasks.c.category_id == category_id)
            .values(category_id=None, updated_at=now, version=tasks.c.version + 1)
        )

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        count = func.count().label("count")
        statement = (
            select(func.min(task_tags.c.tag), count)
            .where(task_tags.c.user_id == user_id)
            .group_by(task_tags.c.tag_key)
            .order_by(count.desc(), task_tags.c.tag_key)
        )
        return [(tag, n) for tag, n in (await self._connection.execute(statement)).all()]

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        statement = (
            select(*TASKS.columns)
            .where(
                tasks.c.user_id == user_id,
                tasks.c.remind_at <= until,
                tasks.c.completed.is_(False),
            )
            .order_by(tasks.c.remind_at, tasks.c.id)
            .limit(limit)
        )
        return [TASKS.from_row(row) for row in (await self._connection.execute(statement)).all()]

    async def _write_tags(self, task: Task) -> None:
        if task.fields.tags:
            rows = [
                {"user_id": task.user_id, "task_id": task.id, "tag_key": key, "tag": tag}
                for tag, key in zip(task.fields.tags, task.tag_keys, strict=True)
            ]
            await self._connection.execute(_INSERT_TAGS, rows)


class SqlCategoryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(
        self, user_id: str, category_id: UUID, *, for_update: bool = False, for_share: bool = False
    ) -> Category | None:
        statement = select(*CATEGORIES.columns).where(categories.c.user_id == user_id, categories.c.id == category_id)
        if for_update:
            statement = statement.with_for_update()
        elif for_share:
            statement = statement.with_for_update(read=True)
        row = (await self._connection.execute(statement)).first()
        return CATEGORIES.from_row(row) if row else None

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        statement = (
            select(*CATEGORIES.columns)
            .where(categories.c.user_id == user_id)
            .order_by(categories.c.name_key, categories.c.id)
        )
        return [CATEGORIES.from_row(row) for row in (await self._connection.execute(statement)).all()]

    async def add(self, category: Category) -> None:
        await self._unique_name(insert(categories).values(CATEGORIES.to_row(category)), category)

    async def update(self, category: Category) -> None:
        row = CATEGORIES.to_row(category)
        statement = (
            update(categories)
            .where(categories.c.user_id == category.user_id, categories.c.id == category.id)
            .values({key: value for key, value in row.items() if key not in ("user_id", "id", "created_at")})
        )
        await self._unique_name(statement, category)

    async def remove(self, user_id: str, category_id: UUID) -> bool:
        statement = delete(categories).where(categories.c.user_id == user_id, categories.c.id == category_id)
        return (await self._connection.execute(statement)).rowcount == 1

    async def _unique_name(self, statement: Any, category: Category) -> Any:
        # A savepoint keeps the transaction usable on PostgreSQL after the duplicate is refused.
        try:
            async with self._connection.begin_nested():
                return await self._connection.execute(statement)
        except IntegrityError as error:
            raise Conflict(f"you already have a category named {category.fields.name!r}") from error
