"""The read side of export (the `ExportReader` port): a user's account read from one snapshot,
the tasks a page at a time in structure order.

A snapshot is one read-only transaction (PostgreSQL: REPEATABLE READ on a pooled connection;
SQLite: a deferred read transaction, which WAL lets writers go on beside): every page sees the
same commits, so a document never names a category or a parent that a later page lacks.

Structure order is level by level (see `todo_core.portability`). Level `n` is the tasks with
exactly `n` ancestors: `n` lookups up, by primary key, to a task with no parent. Each level is read by keyset
on the index `(user_id, parent_id, position, id)`, so a page costs about the same early or
late, and every row is visited once per level (at most five times over an export).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, case, literal, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_adapters.sqlalchemy.engine import for_reads
from todo_adapters.sqlalchemy.execution import Executor, PsycopgExecutor, SqlAlchemyExecutor
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.mapping import TASKS
from todo_adapters.sqlalchemy.psycopg import PostgresPool
from todo_adapters.sqlalchemy.repositories.categories import SqlCategoryRepository
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_adapters.sqlalchemy.repositories.settings import SqlSettingsRepository
from todo_adapters.sqlalchemy.sqlite_driver import in_thread
from todo_adapters.sqlalchemy.tables import tasks
from todo_adapters.sqlalchemy.visibility import committed_tasks
from todo_core.category import Category
from todo_core.errors import StorageUnavailable
from todo_core.portability import LEVELS, ExportPage, StructurePosition
from todo_core.task import Task
from todo_core.user_settings import UserSettings

_USER: Any = bindparam("user_id")


def _levels_up(task_id: Any, ancestors: int) -> Any:
    """An expression: 1 if the user's task `task_id` exists and has exactly `ancestors`
    ancestors, else NULL. Each step up is a correlated subquery, which the database runs as one
    primary-key lookup per row: unlike a join, its plan cannot go wrong on a table whose
    statistics are stale (PostgreSQL planned a join after a large import as nested scans, 10 s
    for 3,000 tasks)."""
    up = tasks.alias(f"up{ancestors}")
    value = (
        case((up.c.parent_id.is_(None), literal(1))) if ancestors == 0 else _levels_up(up.c.parent_id, ancestors - 1)
    )
    return select(value).where(up.c.user_id == _USER, up.c.id == task_id).scalar_subquery()


def _level(level: int, *, after: bool) -> Select[Any]:
    """The user's tasks on `level`, by (parent, position, id), after a bound position if `after`."""
    conditions: list[Any] = [tasks.c.user_id == _USER, committed_tasks()]
    if level == 0:
        conditions.append(tasks.c.parent_id.is_(None))
    else:
        conditions += [tasks.c.parent_id.is_not(None), _levels_up(tasks.c.parent_id, level - 1) == 1]
    keys: list[Any] = [tasks.c.parent_id, tasks.c.position, tasks.c.id]
    bounds: list[Any] = [
        bindparam("after_parent", type_=tasks.c.parent_id.type),
        bindparam("after_position", type_=tasks.c.position.type),
        bindparam("after_id", type_=tasks.c.id.type),
    ]
    if level == 0:  # no parent to order by
        keys, bounds = keys[1:], bounds[1:]
    if after:
        conditions.append(tuple_(*keys) > tuple_(*bounds))
    return select(*TASKS.columns).where(*conditions).order_by(*keys).limit(bindparam("limit"))


# Every variant built once (the executors compile each statement once).
_LEVELS = {(level, after): _level(level, after=after) for level in range(LEVELS) for after in (False, True)}


class SqlAccountSnapshot:
    """Reads of one user's account inside one read-only transaction."""

    def __init__(self, executor: Executor, user_id: str) -> None:
        self._sql = executor
        self._user_id = user_id
        none_taken = ChangeNumbers(executor, taking=False)  # a read takes no change number
        self._settings = SqlSettingsRepository(executor, none_taken)
        self._categories = SqlCategoryRepository(executor, none_taken)

    async def settings(self) -> UserSettings:
        return await self._settings.get(self._user_id)

    async def categories(self) -> Sequence[Category]:
        return await self._categories.list_for_user(self._user_id)

    async def tasks(self, after: StructurePosition | None, limit: int) -> ExportPage:
        found: list[Task] = []
        level = 0 if after is None else after.level
        while level < LEVELS and len(found) < limit:
            values: dict[str, Any] = {"user_id": self._user_id, "limit": limit - len(found)}
            bound = after is not None and after.level == level
            if after is not None and bound:
                values.update(after_position=after.position, after_id=after.id)
                if level > 0:
                    values["after_parent"] = after.parent_id
            rows = await self._sql.rows(_LEVELS[(level, bound)], values)
            found += [TASKS.from_row(row) for row in rows]
            if len(found) < limit:
                level, after = level + 1, None
        if len(found) < limit:  # every level is done
            return ExportPage(found, None)
        # A full page ends on the level being read: a level is left only when it runs short.
        return ExportPage(found, StructurePosition.of(level, found[-1]))


#: How many exports of a process read at once: their share of its connections, which the
#: other requests never wait for. Reading takes as long as the database does, not as the client
#: (the API spools the document before sending it), so a turn is short.
EXPORT_CONNECTIONS = 2
#: The longest an export waits for a turn; then it is a 503 with `Retry-After`.
EXPORT_TURN_SECONDS = 10
#: How long an export's snapshot may sit idle before PostgreSQL ends it (a stalled process must
#: not keep a connection, and VACUUM's horizon, for ever).
EXPORT_IDLE_MS = 30_000


class ExportTurns:
    """The turns exports take to read: at most `share` at once."""

    def __init__(self, share: int = EXPORT_CONNECTIONS, *, wait_seconds: float = EXPORT_TURN_SECONDS) -> None:
        self._free = asyncio.Semaphore(share)
        self._wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """:raises StorageUnavailable: no turn came in time."""
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._free.acquire()
        except TimeoutError as error:
            raise StorageUnavailable("every export connection is busy; try again") from error
        try:
            yield
        finally:
            self._free.release()


class PostgresExportReader:
    def __init__(self, pool: PostgresPool, turns: ExportTurns | None = None) -> None:
        self._pool = pool
        self._turns = turns or ExportTurns()

    @contextlib.asynccontextmanager
    async def snapshot(self, user_id: str) -> AsyncIterator[SqlAccountSnapshot]:
        async with self._turns.turn(), self._pool.connection() as connection:
            await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            await connection.execute(f"SET LOCAL idle_in_transaction_session_timeout = {EXPORT_IDLE_MS}")
            yield SqlAccountSnapshot(PsycopgExecutor(connection, None), user_id)
            # On a failure or a cancellation, the pool rolls back (or closes) the connection.
            await connection.execute("ROLLBACK")


class SqliteExportReader:
    def __init__(self, engine: AsyncEngine, turns: ExportTurns | None = None) -> None:
        self._engine = for_reads(engine)
        self._turns = turns or ExportTurns()

    @contextlib.asynccontextmanager
    async def snapshot(self, user_id: str) -> AsyncIterator[SqlAccountSnapshot]:
        async with self._turns.turn():
            try:
                async with self._engine.connect() as connection:
                    # A read transaction (deferred: it takes no write lock): one snapshot for all.
                    await connection.exec_driver_sql("BEGIN")
                    try:
                        async with in_thread(connection):  # pages of many rows: read beside the loop
                            yield SqlAccountSnapshot(SqlAlchemyExecutor(connection), user_id)
                    finally:
                        await connection.exec_driver_sql("ROLLBACK")
            except (DBAPIError, OSError) as error:
                raise storage_unavailable(error) from error
