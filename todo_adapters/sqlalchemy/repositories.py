"""Repositories on SQLAlchemy Core: rows map straight to entities, no ORM objects in between.

Every statement filters by `user_id`; a row of another user is never read, written or counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_adapters.sqlalchemy.tables import categories, task_tags, tasks
from todo_core.category import Category, CategoryFields
from todo_core.errors import Conflict
from todo_core.query import Page, SortField, Status, TaskQuery
from todo_core.task import Priority, Task, TaskFields

_SORT_COLUMNS = {
    SortField.CREATED_AT: tasks.c.created_at,
    SortField.UPDATED_AT: tasks.c.updated_at,
    SortField.DUE_AT: tasks.c.due_at,
    SortField.PRIORITY: tasks.c.priority,
    SortField.TITLE: tasks.c.title_key,
}


def _task_row(task: Task) -> dict[str, Any]:
    fields = task.fields
    return {
        "user_id": task.user_id,
        "id": task.id,
        "title": fields.title,
        "title_key": task.title_key,
        "description": fields.description,
        "completed": fields.completed,
        "completed_at": task.completed_at,
        "priority": int(fields.priority),
        "due_at": fields.due_at,
        "remind_at": fields.remind_at,
        "recurrence": fields.recurrence,
        "tags": list(fields.tags),
        "category_id": fields.category_id,
        "next_occurrence_id": task.next_occurrence_id,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "version": task.version,
    }


def _task_from_row(row: Row[Any]) -> Task:
    return Task(
        id=row.id,
        user_id=row.user_id,
        fields=TaskFields(
            title=row.title,
            description=row.description,
            completed=row.completed,
            priority=Priority(row.priority),
            due_at=row.due_at,
            remind_at=row.remind_at,
            recurrence=row.recurrence,
            tags=tuple(row.tags),
            category_id=row.category_id,
        ),
        completed_at=row.completed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        next_occurrence_id=row.next_occurrence_id,
    )


_TASK_COLUMNS = [column for column in tasks.c if column.name != "title_key"]


class SqlTaskRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        # The tags of the tasks this transaction has read, so that an update that keeps them
        # (a completion, a new title) does not rewrite the user's tag index.
        self._tags_read: dict[tuple[str, UUID], tuple[str, ...]] = {}

    async def get(self, user_id: str, task_id: UUID, *, for_update: bool = False) -> Task | None:
        statement = select(*_TASK_COLUMNS).where(tasks.c.user_id == user_id, tasks.c.id == task_id)
        if for_update:
            statement = statement.with_for_update()  # SQLite ignores it: its transactions are serial
        row = (await self._connection.execute(statement)).first()
        if row is None:
            return None
        task = _task_from_row(row)
        self._tags_read[(user_id, task_id)] = task.fields.tags
        return task

    async def list_for_user(self, user_id: str, query: TaskQuery) -> Page:
        statement = (
            select(*_TASK_COLUMNS)
            .where(tasks.c.user_id == user_id, *_filters(user_id, query))
            .order_by(*_order(query))
            .limit(query.limit + 1)
        )
        rows = (await self._connection.execute(statement)).all()
        items = [_task_from_row(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, query.position_of(items[-1]) if more else None)

    async def add(self, task: Task) -> None:
        await self._connection.execute(insert(tasks).values(_task_row(task)))
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def update(self, task: Task) -> None:
        row = _task_row(task)
        statement = (
            update(tasks)
            .where(tasks.c.user_id == task.user_id, tasks.c.id == task.id)
            .values({key: value for key, value in row.items() if key not in ("user_id", "id", "created_at")})
        )
        await self._connection.execute(statement)
        if self._tags_read.get((task.user_id, task.id)) == task.fields.tags:
            return
        await self._connection.execute(
            delete(task_tags).where(task_tags.c.user_id == task.user_id, task_tags.c.task_id == task.id)
        )
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def remove(self, user_id: str, task_id: UUID, *, version: int | None = None) -> bool:
        statement = delete(tasks).where(tasks.c.user_id == user_id, tasks.c.id == task_id)
        if version is not None:
            statement = statement.where(tasks.c.version == version)
        if (await self._connection.execute(statement)).rowcount != 1:
            return False
        await self._connection.execute(
            delete(task_tags).where(task_tags.c.user_id == user_id, task_tags.c.task_id == task_id)
        )
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
            select(*_TASK_COLUMNS)
            .where(
                tasks.c.user_id == user_id,
                tasks.c.remind_at <= until,
                tasks.c.completed.is_(False),
            )
            .order_by(tasks.c.remind_at, tasks.c.id)
            .limit(limit)
        )
        return [_task_from_row(row) for row in (await self._connection.execute(statement)).all()]

    async def _write_tags(self, task: Task) -> None:
        if task.fields.tags:
            rows = [
                {"user_id": task.user_id, "task_id": task.id, "tag_key": key, "tag": tag}
                for tag, key in zip(task.fields.tags, task.tag_keys, strict=True)
            ]
            await self._connection.execute(insert(task_tags), rows)


def _filters(user_id: str, query: TaskQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.status is Status.PENDING:
        conditions.append(tasks.c.completed.is_(False))
    elif query.status is Status.COMPLETED:
        conditions.append(tasks.c.completed.is_(True))
    if query.priorities:
        conditions.append(tasks.c.priority.in_(sorted(int(p) for p in query.priorities)))
    if query.category_id is not None:
        conditions.append(tasks.c.category_id == query.category_id)
    if query.tag_keys:
        tagged = (
            select(task_tags.c.task_id)
            .where(task_tags.c.user_id == user_id, task_tags.c.tag_key.in_(query.tag_keys))
            .group_by(task_tags.c.task_id)
            .having(func.count() == len(query.tag_keys))
        )
        conditions.append(tasks.c.id.in_(tagged))
    if query.due_before is not None:
        conditions.append(tasks.c.due_at < query.due_before)
    if query.due_after is not None:
        conditions.append(tasks.c.due_at >= query.due_after)
    if query.search:
        pattern = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(tasks.c.title.ilike(pattern, escape="\\"), tasks.c.description.ilike(pattern, escape="\\"))
        )
    if query.after is not None:
        conditions.append(_after(query))
    return conditions


def _after(query: TaskQuery) -> ColumnElement[bool]:
    """Rows on later pages than the one that ended at `query.after`."""
    assert query.after is not None
    value, last_id = query.after
    column = _SORT_COLUMNS[query.sort.field]
    descending = query.sort.descending

    def later(left: Any, right: Any) -> ColumnElement[bool]:
        return left < right if descending else left > right  # type: ignore[no-any-return]

    if query.sort.field is not SortField.DUE_AT:
        return later(tuple_(column, tasks.c.id), tuple_(value, last_id))
    # Missing due dates come last in both directions.
    if value is None:
        return and_(column.is_(None), later(tasks.c.id, last_id))
    return or_(later(tuple_(column, tasks.c.id), tuple_(value, last_id)), column.is_(None))


def _order(query: TaskQuery) -> list[Any]:
    column = _SORT_COLUMNS[query.sort.field]
    if query.sort.descending:
        return [column.desc().nulls_last(), tasks.c.id.desc()]
    return [column.asc().nulls_last(), tasks.c.id.asc()]


def _category_from_row(row: Row[Any]) -> Category:
    return Category(
        id=row.id,
        user_id=row.user_id,
        fields=CategoryFields(name=row.name, color=row.color),
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


_CATEGORY_COLUMNS = [column for column in categories.c if column.name != "name_key"]


class SqlCategoryRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(
        self, user_id: str, category_id: UUID, *, for_update: bool = False, for_share: bool = False
    ) -> Category | None:
        statement = select(*_CATEGORY_COLUMNS).where(categories.c.user_id == user_id, categories.c.id == category_id)
        if for_update:
            statement = statement.with_for_update()
        elif for_share:
            statement = statement.with_for_update(read=True)
        row = (await self._connection.execute(statement)).first()
        return _category_from_row(row) if row else None

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        statement = (
            select(*_CATEGORY_COLUMNS)
            .where(categories.c.user_id == user_id)
            .order_by(categories.c.name_key, categories.c.id)
        )
        return [_category_from_row(row) for row in (await self._connection.execute(statement)).all()]

    async def add(self, category: Category) -> None:
        await self._unique_name(insert(categories).values(self._row(category)), category)

    async def update(self, category: Category) -> None:
        row = self._row(category)
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

    @staticmethod
    def _row(category: Category) -> dict[str, Any]:
        return {
            "user_id": category.user_id,
            "id": category.id,
            "name": category.fields.name,
            "name_key": category.name_key,
            "color": category.fields.color,
            "created_at": category.created_at,
            "updated_at": category.updated_at,
            "version": category.version,
        }
