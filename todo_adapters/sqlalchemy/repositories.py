"""Repositories on SQLAlchemy Core: rows map straight to entities, no ORM objects in between.

Every statement filters by `user_id`; a row of another user is never read, written or counted.
Statements are built once, here, and run with each call's values by an `Executor` (building a
statement costs more than running it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Select,
    TextClause,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)

from todo_adapters.sqlalchemy.execution import DuplicateKey, Executor
from todo_adapters.sqlalchemy.import_slices import WriteAhead
from todo_adapters.sqlalchemy.mapping import CATEGORIES, TASKS
from todo_adapters.sqlalchemy.tables import (
    UTCDateTime,
    calendar_feeds,
    categories,
    idempotency_keys,
    metadata,
    task_tags,
    tasks,
    tombstones,
    user_changes,
    user_settings,
)
from todo_adapters.sqlalchemy.visibility import committed_tags, committed_tasks
from todo_core import subtasks
from todo_core.calendar_feed import CalendarFeed
from todo_core.category import Category
from todo_core.errors import Conflict, UserBusy
from todo_core.idempotency import Outcome, Recorded
from todo_core.sync import ChangeKind
from todo_core.task import Task
from todo_core.user_settings import UserSettings

#: Columns an update never changes: the key, and when the row was made.
_FIXED = frozenset({"user_id", "id", "created_at"})

_USER: BindParameter[str] = bindparam("user_id")


def _seq_of(user_param: str) -> ScalarSelect[Any]:
    """The user's change number, as this transaction has set it (see `ChangeNumbers`)."""
    return select(user_changes.c.seq).where(user_changes.c.user_id == bindparam(user_param)).scalar_subquery()


# The same text on PostgreSQL and SQLite. The upsert's row lock is held until the transaction ends.
_NEXT_CHANGE = text(
    "INSERT INTO user_changes (user_id, seq, horizon) VALUES (:user_id, 1, 0) "
    "ON CONFLICT (user_id) DO UPDATE SET seq = user_changes.seq + 1"
)
# SQLite: not while an import of the user's is being written (see `import_slices.py`); no row
# changes then.
_NEXT_CHANGE_UNLESS_IMPORTING = text(
    "INSERT INTO user_changes (user_id, seq, horizon) VALUES (:user_id, 1, 0) "
    "ON CONFLICT (user_id) DO UPDATE SET seq = user_changes.seq + 1 WHERE user_changes.importing IS NULL"
)
_CHANGE_NUMBER = select(user_changes.c.seq).where(user_changes.c.user_id == _USER)
# PostgreSQL: the user's turn, a lock queue in arrival order, held to the end of the transaction.
# The upsert alone queues nobody: each waiter sleeps until the row's holder ends, then all of
# them race for it again, and `lock_timeout` restarts with every new holder; behind a line of
# the user's batches a write waited 0.9 s, 0.9 s, 0.9 s … until the statement timeout (503).
# In this queue it sleeps once, and `lock_timeout` bounds its whole wait.
_USERS_TURN = text("SELECT pg_advisory_xact_lock(hashtextextended(:user_id, 1700))")
# PostgreSQL: the wait for the change number bounded, and only that wait (see `ChangeNumbers`).
_BOUNDED_WAITS: dict[int, TextClause] = {}
_UNBOUNDED_WAIT = text("SET LOCAL lock_timeout TO DEFAULT")


def _bounded_wait(milliseconds: int) -> TextClause:
    """`SET LOCAL lock_timeout` to this many ms; one statement per value (a process has one)."""
    found = _BOUNDED_WAITS.get(milliseconds)
    if found is None:
        found = _BOUNDED_WAITS[milliseconds] = text(f"SET LOCAL lock_timeout = {int(milliseconds)}")
    return found


_TASK = select(*TASKS.columns).where(tasks.c.user_id == _USER, tasks.c.id == bindparam("task_id"))
_INSERT_TASK = insert(tasks).values(change_seq=_seq_of("b_user_id"))
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
_COUNT_UP_TO = select(func.count()).select_from(
    select(tasks.c.id).where(tasks.c.user_id == _USER).limit(bindparam("up_to")).subquery()
)
_LAST_POSITION = {
    top_level: select(func.max(tasks.c.position)).where(*_under(top_level)) for top_level in (False, True)
}
# Where-clause values are named apart from the columns an update sets.
_UPDATE_TASK = (
    update(tasks)
    .where(tasks.c.user_id == bindparam("b_user_id"), tasks.c.id == bindparam("b_id"))
    .values(change_seq=_seq_of("b_user_id"))
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
        change_seq=_seq_of("b_user_id"),
    )
)
_INSERT_TOMBSTONE = insert(tombstones).values(change_seq=_seq_of("b_user_id"))
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

_CATEGORY = select(*CATEGORIES.columns).where(
    categories.c.user_id == _USER, categories.c.id == bindparam("category_id")
)
_CATEGORIES = (
    select(*CATEGORIES.columns).where(categories.c.user_id == _USER).order_by(categories.c.name_key, categories.c.id)
)
_INSERT_CATEGORY = insert(categories).values(change_seq=_seq_of("b_user_id"))
_UPDATE_CATEGORY = (
    update(categories)
    .where(categories.c.user_id == bindparam("b_user_id"), categories.c.id == bindparam("b_id"))
    .values(change_seq=_seq_of("b_user_id"))
)
_DELETE_CATEGORY = delete(categories).where(categories.c.user_id == _USER, categories.c.id == bindparam("category_id"))

# The columns of a user's settings are named as `UserSettings`'s fields.
_SETTING_NAMES = [field.name for field in dataclasses.fields(UserSettings)]
_SETTINGS = select(*(user_settings.c[name] for name in _SETTING_NAMES)).where(user_settings.c.user_id == _USER)
# The same text on PostgreSQL and SQLite.
_PUT_SETTINGS = text(
    f"INSERT INTO user_settings (user_id, {', '.join(_SETTING_NAMES)}) "
    f"VALUES (:user_id, {', '.join(':' + name for name in _SETTING_NAMES)}) "
    f"ON CONFLICT (user_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in _SETTING_NAMES)}"
)

# A key is claimed anew once it has expired; a claim holds the key's row until its
# transaction ends, so a second claim of the same key waits and then sees what the first recorded.
_CLAIM_KEY = text(
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, recorded_at) "
    "VALUES (:user_id, :key, :fingerprint, :now) "
    "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "recorded_at = excluded.recorded_at, status = NULL, headers = NULL, body = NULL "
    "WHERE idempotency_keys.recorded_at < :expired_before"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("expired_before", type_=UTCDateTime()))
_KEY = select(
    idempotency_keys.c.fingerprint, idempotency_keys.c.status, idempotency_keys.c.headers, idempotency_keys.c.body
).where(idempotency_keys.c.user_id == _USER, idempotency_keys.c.key == bindparam("key"))
_RECORD_KEY = update(idempotency_keys).where(
    idempotency_keys.c.user_id == bindparam("b_user_id"), idempotency_keys.c.key == bindparam("b_key")
)

# A feed's columns are named as `CalendarFeed`'s fields.
_FEED_COLUMNS = [calendar_feeds.c[field.name] for field in dataclasses.fields(CalendarFeed)]
_INSERT_FEED = insert(calendar_feeds)
_FEEDS = (
    select(*_FEED_COLUMNS)
    .where(calendar_feeds.c.user_id == _USER)
    .order_by(calendar_feeds.c.created_at, calendar_feeds.c.id)
)
_FEED_BY_HASH = select(*_FEED_COLUMNS).where(
    calendar_feeds.c.user_id == _USER, calendar_feeds.c.secret_hash == bindparam("secret_hash")
)
_DELETE_FEED = delete(calendar_feeds).where(
    calendar_feeds.c.user_id == _USER, calendar_feeds.c.id == bindparam("feed_id")
)

#: What erasing a user deletes: every table with a `user_id`, so a table added later is erased
#: too, but the change counter, which outlives the user's data to refuse old sync tokens.
#: Children first (a distributed database may add foreign keys).
ERASED_TABLES = tuple(
    table for table in reversed(metadata.sorted_tables) if "user_id" in table.c and table is not user_changes
)
_ERASE = [delete(table).where(table.c.user_id == _USER) for table in ERASED_TABLES]
# Every token issued before the erasure names a number below the new horizon: 410.
_FORGET_HISTORY = (
    update(user_changes).where(user_changes.c.user_id == bindparam("b_user_id")).values(horizon=user_changes.c.seq)
)


#: Before every row: where a purge starts when it does not know where the previous batch ended.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A batch of every user's expired tombstones, oldest first (a total order: the two statements
# below pick the same rows). First each of their users' horizon moves to the newest number of
# the batch (never back); then the batch is deleted, but only tombstones at or below their user's
# horizon: whatever happened between the two statements, no tombstone is forgotten while a
# client could still be owed it. Each statement touches at most `limit` rows.
def _expired_tombstones(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .where(
            tombstones.c.deleted_at >= bindparam("deleted_from"), tombstones.c.deleted_at < bindparam("deleted_before")
        )
        .order_by(tombstones.c.deleted_at, tombstones.c.user_id, tombstones.c.id)
        .limit(bindparam("limit"))
    )


_BATCH = _expired_tombstones(tombstones.c.user_id, tombstones.c.change_seq).subquery()
_BATCH_NEWEST = (
    select(_BATCH.c.user_id, func.max(_BATCH.c.change_seq).label("seq")).group_by(_BATCH.c.user_id).subquery()
)
_MOVE_HORIZONS = (
    update(user_changes)
    .where(user_changes.c.user_id == _BATCH_NEWEST.c.user_id, user_changes.c.horizon < _BATCH_NEWEST.c.seq)
    .values(horizon=_BATCH_NEWEST.c.seq)
)
_PURGE_TOMBSTONES = (
    delete(tombstones)
    .where(
        tuple_(tombstones.c.user_id, tombstones.c.id).in_(_expired_tombstones(tombstones.c.user_id, tombstones.c.id)),
        tombstones.c.change_seq
        <= select(user_changes.c.horizon).where(user_changes.c.user_id == tombstones.c.user_id).scalar_subquery(),
    )
    .returning(tombstones.c.deleted_at)
)
_PURGE_KEYS = (
    delete(idempotency_keys)
    .where(
        tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(
            select(idempotency_keys.c.user_id, idempotency_keys.c.key)
            .where(
                idempotency_keys.c.recorded_at >= bindparam("recorded_from"),
                idempotency_keys.c.recorded_at < bindparam("recorded_before"),
            )
            .order_by(idempotency_keys.c.recorded_at)
            .limit(bindparam("limit"))
        )
    )
    .returning(idempotency_keys.c.recorded_at)
)


class ChangeNumbers:
    """The users whose change numbers one unit of work has taken (see `UnitOfWork`).

    A writing unit of work takes the user's next number before its first statement on the
    user's rows, and so holds the user's counter row (locked by the upsert) before it reads
    anything: one user's writers take turns, each reading what the one before committed. That
    is the only row lock a unit of work takes (no `FOR UPDATE`; see docs/guarantees.md). A unit
    of work that only reads takes none (`taking=False`).

    With `lock_timeout_ms` (PostgreSQL), the wait for the number is bounded: the writer first
    queues for the user's turn (a transaction-scoped advisory lock, granted in arrival order),
    then takes the number; past the bound either statement fails with `lock_not_available`,
    which the unit of work turns into `UserBusy`.
    Only that wait: the lock it waits for is held by the same user's other writes, whereas a
    wait for anything else (a table an operator or a migration locked) is no user's doing and
    keeps the statement timeout (503).

    With `refusing_imports` (SQLite), a user whose import is being written in slices gets no
    number: `UserBusy` (429), as on PostgreSQL a write that waits for the user's import.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        taking: bool = True,
        lock_timeout_ms: int | None = None,
        refusing_imports: bool = False,
    ) -> None:
        self._sql = executor
        self._taking = taking
        self._refusing_imports = refusing_imports
        self._bounded = None if lock_timeout_ms is None else _bounded_wait(lock_timeout_ms)
        self.taken: set[str] = set()
        #: The users whose data this unit of work changed: their change is to be announced.
        self.changed: set[str] = set()

    async def take(self, user_id: str) -> None:
        if self._taking and user_id not in self.taken:
            if self._refusing_imports:
                if await self._sql.count(_NEXT_CHANGE_UNLESS_IMPORTING, {"user_id": user_id}) != 1:
                    raise UserBusy("an import into this account is being written; try again when it is done")
            elif self._bounded is None:
                await self._sql.run(_NEXT_CHANGE, {"user_id": user_id})
            else:  # pipelined: four statements, one round trip
                await self._sql.run(self._bounded, {})
                await self._sql.run(_USERS_TURN, {"user_id": user_id})
                await self._sql.run(_NEXT_CHANGE, {"user_id": user_id})
                await self._sql.run(_UNBOUNDED_WAIT, {})
            self.taken.add(user_id)

    async def write(self, user_id: str) -> None:
        await self.take(user_id)
        self.changed.add(user_id)

    async def current(self, user_id: str) -> int:
        """The user's change number as this unit of work sees it."""
        rows = await self._sql.rows(_CHANGE_NUMBER, {"user_id": user_id})
        return int(rows[0][0])


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
        await self._changes.take(user_id)  # counted behind the user's other writers: exact
        rows = await self._sql.rows(_COUNT_UP_TO, {"user_id": user_id, "up_to": up_to})
        return int(rows[0][0])

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
        await self._write_tags(task)
        self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def add_many(self, new: Sequence[Task]) -> None:
        if not new:
            return
        numbers: dict[str, int] = {}
        for user_id in {task.user_id for task in new}:
            await self._changes.write(user_id)
            numbers[user_id] = await self._changes.current(user_id)
        rows = [{**TASKS.to_row(task), "change_seq": numbers[task.user_id]} for task in new]
        tags = [row for task in new for row in _tag_rows(task)]
        if self._ahead is not None and len(numbers) == 1:
            ((user_id, number),) = numbers.items()
            self._ahead.add(user_id, number, rows, tags)
        else:
            # One statement for the tasks and one for their tags (PostgreSQL: executemany in
            # pipeline mode; SQLite: executemany), not two per task.
            await self._sql.run(_INSERT_TASKS, rows)
            if tags:
                await self._sql.run(_INSERT_TAGS, tags)
        for task in new:
            self._tags_read[(task.user_id, task.id)] = task.fields.tags

    async def update(self, task: Task) -> None:
        await self._changes.write(task.user_id)
        changed = {name: value for name, value in TASKS.to_row(task).items() if name not in _FIXED}
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
        await self._sql.run(_DELETE_TAGS, key)
        await _bury(self._sql, self._changes, user_id, task_id, ChangeKind.TASK, now)
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


def _tag_rows(task: Task) -> list[dict[str, Any]]:
    return [
        {"user_id": task.user_id, "task_id": task.id, "tag_key": key, "tag": tag}
        for tag, key in zip(task.fields.tags, task.tag_keys, strict=True)
    ]


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
        changed = {name: value for name, value in CATEGORIES.to_row(category).items() if name not in _FIXED}
        async with self._unique_name(category):
            await self._sql.run(_UPDATE_CATEGORY, {"b_user_id": category.user_id, "b_id": category.id, **changed})

    async def remove(self, user_id: str, category_id: UUID, now: datetime) -> bool:
        await self._changes.take(user_id)
        if await self._sql.count(_DELETE_CATEGORY, {"user_id": user_id, "category_id": category_id}) != 1:
            return False
        await _bury(self._sql, self._changes, user_id, category_id, ChangeKind.CATEGORY, now)
        return True

    @contextlib.asynccontextmanager
    async def _unique_name(self, category: Category) -> AsyncIterator[None]:
        try:
            async with self._sql.guarded():
                yield
        except DuplicateKey as error:
            raise Conflict(f"you already have a category named {category.fields.name!r}") from error


class SqlSettingsRepository:
    """A user's settings: not synced data, so saving them takes no change number."""

    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def get(self, user_id: str) -> UserSettings:
        await self._changes.take(user_id)  # before any of the user's rows, as every repository
        rows = await self._sql.rows(_SETTINGS, {"user_id": user_id})
        return UserSettings(*rows[0]) if rows else UserSettings()

    async def put(self, user_id: str, settings: UserSettings) -> None:
        await self._sql.run(_PUT_SETTINGS, {"user_id": user_id, **dataclasses.asdict(settings)})


class SqlCalendarFeedRepository:
    """A user's calendar feeds: not synced data, so saving one takes no change number."""

    def __init__(self, executor: Executor) -> None:
        self._sql = executor

    async def add(self, feed: CalendarFeed) -> None:
        await self._sql.run(_INSERT_FEED, dataclasses.asdict(feed))

    async def list_for_user(self, user_id: str) -> Sequence[CalendarFeed]:
        return [CalendarFeed(*row) for row in await self._sql.rows(_FEEDS, {"user_id": user_id})]

    async def find(self, user_id: str, secret_hash: bytes) -> CalendarFeed | None:
        rows = await self._sql.rows(_FEED_BY_HASH, {"user_id": user_id, "secret_hash": secret_hash})
        return CalendarFeed(*rows[0]) if rows else None

    async def remove(self, user_id: str, feed_id: UUID) -> bool:
        return await self._sql.count(_DELETE_FEED, {"user_id": user_id, "feed_id": feed_id}) == 1


class SqlAccountEraser:
    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def erase(self, user_id: str) -> None:
        # First the user's next change number: it waits for the user's other writers, and its
        # announcement tells open streams to sync (and so learn that their token is void).
        await self._changes.write(user_id)
        for statement in _ERASE:
            await self._sql.run(statement, {"user_id": user_id})
        await self._sql.run(_FORGET_HISTORY, {"b_user_id": user_id})


class SqlIdempotencyKeys:
    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def claim(
        self, user_id: str, key: str, fingerprint: str, *, now: datetime, expired_before: datetime
    ) -> Recorded | None:
        await self._changes.take(user_id)
        values = {"user_id": user_id, "key": key, "fingerprint": fingerprint, "now": now}
        await self._sql.run(_CLAIM_KEY, {**values, "expired_before": expired_before})
        ((stored_fingerprint, status, headers, body),) = await self._sql.rows(_KEY, {"user_id": user_id, "key": key})
        if status is None:  # what this claim wrote: a recorded key always has its answer
            return None
        outcome = Outcome(status, tuple((name, value) for name, value in headers), bytes(body))
        return Recorded(stored_fingerprint, outcome)

    async def record(self, user_id: str, key: str, outcome: Outcome) -> None:
        values = {"status": outcome.status, "headers": [list(pair) for pair in outcome.headers], "body": outcome.body}
        await self._sql.run(_RECORD_KEY, {"b_user_id": user_id, "b_key": key, **values})


class SqlRetentionRepository:
    """What every user keeps only for a while (see `Retention`)."""

    def __init__(self, executor: Executor) -> None:
        self._sql = executor

    async def purge_tombstones(
        self, *, deleted_before: datetime, limit: int, deleted_from: datetime = EPOCH
    ) -> tuple[int, datetime | None]:
        """Forget a batch (see `Retention.purge_tombstones`) of those deleted from
        `deleted_from` on; return how many, and when the newest of them was deleted."""
        values = {"deleted_from": deleted_from, "deleted_before": deleted_before, "limit": limit}
        await self._sql.run(_MOVE_HORIZONS, values)
        purged = await self._sql.rows(_PURGE_TOMBSTONES, values)
        return len(purged), max((row[0] for row in purged), default=None)

    async def purge_keys(
        self, *, recorded_before: datetime, limit: int, recorded_from: datetime = EPOCH
    ) -> tuple[int, datetime | None]:
        """Forget a batch (see `Retention.purge_keys`) of those recorded from `recorded_from`
        on; return how many, and when the newest of them was recorded."""
        values = {"recorded_from": recorded_from, "recorded_before": recorded_before, "limit": limit}
        purged = await self._sql.rows(_PURGE_KEYS, values)
        return len(purged), max((row[0] for row in purged), default=None)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """The values a statement variant binds: those that are not None."""
    return {name: value for name, value in values.items() if value is not None}


async def _bury(
    sql: Executor, changes: ChangeNumbers, user_id: str, row_id: UUID, kind: ChangeKind, now: datetime
) -> None:
    """Leave the tombstone of a row just deleted, for sync."""
    await changes.write(user_id)
    values = {"user_id": user_id, "id": row_id, "kind": int(kind), "deleted_at": now, "b_user_id": user_id}
    await sql.run(_INSERT_TOMBSTONE, values)
