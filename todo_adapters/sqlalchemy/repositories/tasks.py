"""Tasks and their tags on SQLAlchemy Core (`todo_core.ports.TaskRepository`)."""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, delete, func, insert, literal, select, update

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.import_slices import WriteAhead
from todo_adapters.sqlalchemy.mapping import FIXED, TASKS
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers, bury, seq_of
from todo_adapters.sqlalchemy.tables import task_tags, tasks, user_changes
from todo_adapters.sqlalchemy.visibility import committed_tags, committed_tasks
from todo_core import subtasks
from todo_core.sync import ChangeKind
from todo_core.task import Task

_USER: BindParameter[str] = bindparam("user_id")


_TASK = select(*TASKS.columns).where(tasks.c.user_id == _USER, tasks.c.id == bindparam("task_id"))
_INSERT_TASK = insert(tasks).values(change_seq=seq_of("b_user_id"))
#: Many tasks at once (an import): their change number is given, not looked up per row.
_INSERT_TASKS = insert(tasks)


def _tree_walk(*, down: bool) -> Any:
    """The ids of a user's tasks below (`down`: from the task `task_id`'s children, which need
    no longer find the task itself) or above (from the task itself) the task `task_id`, with
    how many levels away each is; bounded, so a cycle the rules forbid could never loop."""
    task_id = bindparam("task_id", type_=tasks.c.id.type)
    start = select(tasks.c.id, tasks.c.parent_id, literal(1 if down else 0).label("depth")).where(
        tasks.c.user_id == _USER, (tasks.c.parent_id if down else tasks.c.id) == task_id
    )
    walk = start.cte("walk", recursive=True)
    link = tasks.c.parent_id == walk.c.id if down else tasks.c.id == walk.c.parent_id
    step = (
        select(tasks.c.id, tasks.c.parent_id, (walk.c.depth + 1).label("depth"))
        .join_from(tasks, walk, link)
        .where(tasks.c.user_id == _USER, walk.c.depth < subtasks.WALK_BOUND)
    )
    return walk.union_all(step)


_ABOVE = _tree_walk(down=False)
_ANCESTORS = select(_ABOVE.c.id).where(_ABOVE.c.depth > 0).order_by(_ABOVE.c.depth)
_BELOW = _tree_walk(down=True)
_DESCENDANTS = (
    select(*TASKS.columns)
    .join_from(tasks, _BELOW, tasks.c.id == _BELOW.c.id)
    .where(tasks.c.user_id == _USER, _BELOW.c.depth > 0)
    .order_by(_BELOW.c.depth, tasks.c.position, tasks.c.id)
)


def _under(top_level: bool) -> tuple[ColumnElement[bool], ...]:
    """The user's tasks at the top level, or under the task `parent_id` (two statements: `=`
    uses the index on the parent, and `IS NOT DISTINCT FROM` would not)."""
    parent = tasks.c.parent_id.is_(None) if top_level else tasks.c.parent_id == bindparam("parent_id")
    return tasks.c.user_id == _USER, parent


def _children(top_level: bool, after: bool, limited: bool) -> Select[Any]:
    statement = select(*TASKS.columns).where(*_under(top_level)).order_by(tasks.c.position, tasks.c.id)
    if after:
        statement = statement.where(tasks.c.position > bindparam("after", type_=tasks.c.position.type))
    if limited:
        statement = statement.limit(bindparam("limit"))
    return statement


# Every variant built once (the executors compile each statement once).
_CHILDREN = {flags: _children(*flags) for flags in itertools.product((False, True), repeat=3)}
# How many tasks the user has: kept in the user's change row by every write that adds or
# deletes one (see `user_changes`), not counted.
_TASK_COUNT = select(user_changes.c.tasks).where(user_changes.c.user_id == _USER)
_COUNT_TASKS = (
    update(user_changes)
    .where(user_changes.c.user_id == bindparam("b_user_id"))
    .values(tasks=user_changes.c.tasks + bindparam("b_added", type_=user_changes.c.tasks.type))
)
_LAST_POSITION = {
    top_level: select(func.max(tasks.c.position)).where(*_under(top_level)) for top_level in (False, True)
}
# Where-clause values are named apart from the columns an update sets.
_UPDATE_TASK = (
    update(tasks)
    .where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.id == bindparam("b_id"))
    .values(change_seq=seq_of("b_user_id"))
)
_DELETE_TASK = delete(tasks).where(tasks.c.user_id == _USER, tasks.c.id == bindparam("task_id"))
_DELETE_TASK_AT = _DELETE_TASK.where(tasks.c.version == bindparam("version"))
_CLEAR_CATEGORY = (
    update(tasks)
    .where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.category_id == bindparam("b_category_id"))
    .values(
        category_id=None,
        updated_at=bindparam("b_now", type_=tasks.c.updated_at.type),
        version=tasks.c.version + 1,
        change_seq=seq_of("b_user_id"),
    )
)


_DUE_REMINDERS = (
    select(*TASKS.columns)
    .where(
        tasks.c.user_id == _USER,
        tasks.c.remind_at <= bindparam("until", type_=tasks.c.remind_at.type),
        tasks.c.completed.is_(False),
        committed_tasks(),  # read without the user's turn: an import's tasks not yet committed are not due
    )
    .order_by(tasks.c.remind_at, tasks.c.id)
    .limit(bindparam("limit"))
)
_INSERT_TAGS = insert(task_tags)
_DELETE_TAGS = delete(task_tags).where(task_tags.c.user_id == _USER, task_tags.c.task_id == bindparam("task_id"))
_TAGGED = func.count().label("count")
_TAG_COUNTS = (
    select(func.min(task_tags.c.tag), _TAGGED)
    .where(task_tags.c.user_id == _USER, committed_tags())
    .group_by(task_tags.c.tag_key)
    .order_by(_TAGGED.desc(), task_tags.c.tag_key)
)


class SqlTaskRepository:
    """With `ahead` (SQLite), `add_many` keeps the rows for the unit of work to write when it
    commits (see `import_slices.py`): they are not read back before."""

    def __init__(self, executor: Executor, changes: ChangeNumbers, ahead: WriteAhead | None = None) -> None:
        self._sql = executor
        self._changes = changes
        self._ahead = ahead
        # The tags of the tasks this transaction has read, so that an update that keeps them
        # (a completion, a new title) does not rewrite the user's tag index.
        self._tags_read: dict[tuple[str, UUID], tuple[str, ...]] = {}

    async def get(self, user_id: str, task_id: UUID) -> Task | None:
        await self._changes.take(user_id)
        rows = await self._sql.rows(_TASK, {"user_id": user_id, "task_id": task_id})
        if not rows:
            return None
        task = TASKS.from_row(rows[0])
        self._tags_read[(user_id, task_id)] = task.fields.tags
        return task

    async def ancestors(self, user_id: str, task_id: UUID) -> Sequence[UUID]:
        await self._changes.take(user_id)
        return [row[0] for row in await self._sql.rows(_ANCESTORS, {"user_id": user_id, "task_id": task_id})]

    async def descendants(self, user_id: str, task_id: UUID) -> Sequence[Task]:
        await self._changes.take(user_id)
        return self._loaded(user_id, await self._sql.rows(_DESCENDANTS, {"user_id": user_id, "task_id": task_id}))

    async def children(
        self,
        user_id: str,
        parent_id: UUID | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Task]:
        await self._changes.take(user_id)
        statement = _CHILDREN[(parent_id is None, after is not None, limit is not None)]
        values = {"user_id": user_id, "parent_id": parent_id, "after": after, "limit": limit}
        return self._loaded(user_id, await self._sql.rows(statement, _present(values)))

    async def count_for_user(self, user_id: str, *, up_to: int) -> int:
        await self._changes.take(user_id)  # read behind the user's other writers: exact
        rows = await self._sql.rows(_TASK_COUNT, {"user_id": user_id})
        return min(up_to, int(rows[0][0])) if rows else 0

    async def last_position(self, user_id: str, parent_id: UUID | None) -> str | None:
        await self._changes.take(user_id)
        values = _present({"user_id": user_id, "parent_id": parent_id})
        rows = await self._sql.rows(_LAST_POSITION[parent_id is None], values)
        return rows[0][0] if rows else None

    def _loaded(self, user_id: str, rows: Sequence[Sequence[Any]]) -> list[Task]:
        loaded = [TASKS.from_row(row) for row in rows]
        for task in loaded:
            self._tags_read[(user_id, task.id)] = task.fields.tags
        return loaded

    async def add(self, task: Task) -> None:
        await self._changes.write(task.user_id)
        await self._sql.run(_INSERT_TASK, {**TASKS.to_row(task), "b_user_id": task.user_id})
        await self._sql.run(_COUNT_TASKS, {"b_user_id": task.user_id, "b_added": 1})
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def add_many(self, new: Sequence[Task]) -> None:
        if not new:
            return
        numbers: dict[str, int] = {}
        for user_id in {task.user_id for task in new}:
            await self._changes.write(user_id)
            numbers[user_id] = await self._changes.current(user_id)
        rows: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        for start in range(0, len(new), _ROWS_BETWEEN_TURNS):
            if start:
                # An import's rows (tens of thousands) take a second of CPU to build: the
                # event loop serves the other requests between slices of them.
                await asyncio.sleep(0)
            for task in new[start : start + _ROWS_BETWEEN_TURNS]:
                rows.append({**TASKS.to_row(task), "change_seq": numbers[task.user_id]})
                tags += _tag_rows(task)
        if self._ahead is not None and len(numbers) == 1:
            ((user_id, number),) = numbers.items()
            self._ahead.add(user_id, number, rows, tags)
        else:
            # One statement for the tasks and one for their tags (PostgreSQL: executemany in
            # pipeline mode; SQLite: executemany), not two per task.
            await self._sql.run(_INSERT_TASKS, rows)
            if tags:
                await self._sql.run(_INSERT_TAGS, tags)
        # Counted in this unit of work's own transaction, which an import written ahead in slices
        # replays last (`import_slices.py`): its tasks count once they are shown.
        for user_id, added in collections.Counter(task.user_id for task in new).items():
            await self._sql.run(_COUNT_TASKS, {"b_user_id": user_id, "b_added": added})
        for task in new:
            self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def update(self, task: Task) -> None:
        await self._changes.write(task.user_id)
        changed = {name: value for name, value in TASKS.to_row(task).items() if name not in FIXED}
        await self._sql.run(_UPDATE_TASK, {"b_user_id": task.user_id, "b_id": task.id, **changed})
        if self._tags_read.get((task.user_id, task.id)) == task.fields.tags:
            return
        await self._sql.run(_DELETE_TAGS, {"user_id": task.user_id, "task_id": task.id})
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def remove(self, user_id: str, task_id: UUID, now: datetime, *, version: int | None = None) -> bool:
        await self._changes.take(user_id)
        key = {"user_id": user_id, "task_id": task_id}
        if version is None:
            removed = await self._sql.count(_DELETE_TASK, key)
        else:
            removed = await self._sql.count(_DELETE_TASK_AT, {**key, "version": version})
        if removed != 1:
            return False
        await self._sql.run(_COUNT_TASKS, {"b_user_id": user_id, "b_added": -1})
        await self._sql.run(_DELETE_TAGS, key)
        await bury(self._sql, self._changes, user_id, task_id, ChangeKind.TASK, now)
        self._tags_read.pop((user_id, task_id), None)
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._changes.write(user_id)
        await self._sql.run(_CLEAR_CATEGORY, {"b_user_id": user_id, "b_category_id": category_id, "b_now": now})

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        await self._changes.take(user_id)
        return [(tag, n) for tag, n in await self._sql.rows(_TAG_COUNTS, {"user_id": user_id})]

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        await self._changes.take(user_id)
        rows = await self._sql.rows(_DUE_REMINDERS, {"user_id": user_id, "until": until, "limit": limit})
        return [TASKS.from_row(row) for row in rows]

    async def _write_tags(self, task: Task) -> None:
        if task.fields.tags:
            await self._sql.run(_INSERT_TAGS, _tag_rows(task))


#: Rows built between two turns of the event loop (`add_many`): a few milliseconds of CPU.
_ROWS_BETWEEN_TURNS = 200


def _tag_rows(task: Task) -> list[dict[str, Any]]:
    return [
        {"user_id": task.user_id, "task_id": task.id, "tag_key": key, "tag": tag}
        for tag, key in zip(task.fields.tags, task.tag_keys, strict=True)
    ]


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """The values a statement variant binds: those that are not None."""
    return {name: value for name, value in values.items() if value is not None}
