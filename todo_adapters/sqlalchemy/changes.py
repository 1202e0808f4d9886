"""The read side of sync (the `ChangeFeed` port) and the purge of what is kept for a while.

A page of changes is four statements read in one snapshot (PostgreSQL: a REPEATABLE READ
transaction, its statements pipelined; SQLite: one read transaction): the user's change log,
and the categories, tasks and tombstones after the position, each in change order and at
most one more than the page holds. Merged in Python, their first `limit` are the page: a
kind's changes that were not read all come after those that were.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import orjson
from sqlalchemy import Select, Table, Uuid, and_, bindparam, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_adapters.sqlalchemy.engine import for_reads
from todo_adapters.sqlalchemy.execution import compiled_for_postgresql
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.mapping import TASK_VIEW_COLUMNS
from todo_adapters.sqlalchemy.psycopg import PostgresPool, PostgresUnitOfWork
from todo_adapters.sqlalchemy.repositories.retention import EPOCH
from todo_adapters.sqlalchemy.tables import categories, tasks, tombstones, user_changes
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_adapters.sqlalchemy.views import json_object_of
from todo_adapters.sqlalchemy.visibility import committed_tasks
from todo_core.sync import Change, ChangeKind, ChangeLog, ChangePage, ChangePosition, page_of
from todo_core.views import CATEGORY_VIEW_FIELDS
from todo_core.webhooks import DeliveryState

_FIRST_ID = UUID(int=0)
_LAST_ID = UUID(int=(1 << 128) - 1)

_LOG = select(user_changes.c.seq, user_changes.c.horizon).where(user_changes.c.user_id == bindparam("user_id"))
_NUMBER = select(user_changes.c.seq).where(user_changes.c.user_id == bindparam("user_id"))


def _after(table: Table) -> Any:
    """The rows of the user's after a position, in change order (see `_values`)."""
    seq = table.c.change_seq
    after_id = bindparam("after_id", type_=Uuid())
    return and_(
        table.c.user_id == bindparam("user_id"),
        or_(seq > bindparam("seq"), and_(seq == bindparam("seq"), table.c.id > after_id)),
    )


def _changed(table: Table, view_columns: Sequence[Any], dialect: str) -> Select[Any]:
    # On SQLite, an import's tasks written ahead of its commit are not changes yet.
    written = [committed_tasks()] if table is tasks and dialect == "sqlite" else []
    return (
        select(json_object_of(view_columns, dialect), table.c.change_seq, table.c.id)
        .where(_after(table), *written)
        .order_by(table.c.change_seq, table.c.id)
        .limit(bindparam("limit"))
    )


_DELETED = (
    select(tombstones.c.kind, tombstones.c.change_seq, tombstones.c.id)
    .where(_after(tombstones))
    .order_by(tombstones.c.change_seq, tombstones.c.id)
    .limit(bindparam("limit"))
)


def _values(user_id: str, kind: ChangeKind, after: ChangePosition, limit: int) -> dict[str, Any]:
    """The values that select one kind's changes after the position: at the position's own
    number, a kind before the position's is done (no id is after the last), a kind after it
    is not begun (every id is after the first)."""
    after_id = after.id if kind == after.kind else _LAST_ID if kind < after.kind else _FIRST_ID
    return {"user_id": user_id, "seq": after.seq, "after_id": after_id, "limit": limit + 1}


class _SqlChangeFeed:
    """Statements shared by both databases; `_snapshot` runs them on one."""

    _dialect: str

    def __init__(self) -> None:
        category_columns = [categories.c[name] for name in CATEGORY_VIEW_FIELDS]
        self._categories = self._prepared(_changed(categories, category_columns, self._dialect))
        self._tasks = self._prepared(_changed(tasks, TASK_VIEW_COLUMNS, self._dialect))
        self._deleted = self._prepared(_DELETED)
        self._log = self._prepared(_LOG)
        self._number = self._prepared(_NUMBER)

    async def changes(self, user_id: str, after: ChangePosition, limit: int, *, deletions: bool = True) -> ChangePage:
        statements = [
            (self._log, {"user_id": user_id}),
            (self._categories, _values(user_id, ChangeKind.CATEGORY, after, limit)),
            (self._tasks, _values(user_id, ChangeKind.TASK, after, limit)),
        ]
        if deletions:
            statements.append((self._deleted, _values(user_id, ChangeKind.DELETION, after, limit)))
        results = await self._snapshot(statements)
        log_rows, category_rows, task_rows = results[:3]
        log = ChangeLog(*log_rows[0]) if log_rows else ChangeLog(0, 0)
        changed: list[Change] = [
            (seq, ChangeKind.CATEGORY, _uuid(row_id), orjson.Fragment(view)) for view, seq, row_id in category_rows
        ]
        changed += [(seq, ChangeKind.TASK, _uuid(row_id), orjson.Fragment(view)) for view, seq, row_id in task_rows]
        if deletions:
            changed += [(seq, ChangeKind.DELETION, _uuid(row_id), ChangeKind(kind)) for kind, seq, row_id in results[3]]
        return page_of(log, changed, after, limit)

    async def change_number(self, user_id: str) -> int:
        rows = await self._one(self._number, {"user_id": user_id})
        return int(rows[0][0]) if rows else 0

    def _prepared(self, statement: Select[Any]) -> Any:
        return statement

    async def _one(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of one statement, run on its own (no transaction)."""
        raise NotImplementedError

    async def _snapshot(self, statements: Sequence[tuple[Any, dict[str, Any]]]) -> list[Sequence[Sequence[Any]]]:
        raise NotImplementedError


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


class PostgresChangeFeed(_SqlChangeFeed):
    _dialect = "postgresql"

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool
        super().__init__()

    def _prepared(self, statement: Select[Any]) -> Any:
        return compiled_for_postgresql(statement, {"user_id": "", "seq": 0, "after_id": _FIRST_ID, "limit": 0})

    async def _snapshot(self, statements: Sequence[tuple[Any, dict[str, Any]]]) -> list[Sequence[Sequence[Any]]]:
        async with self._pool.connection() as connection, connection.pipeline() as pipeline:
            await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursors = [
                await connection.execute(compiled.sql, compiled.parameters(values)) for compiled, values in statements
            ]
            await connection.execute("COMMIT")
            await pipeline.sync()
            return [await cursor.fetchall() for cursor in cursors]

    async def _one(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(statement.sql, statement.parameters(values))
            return await cursor.fetchall()


class SqliteChangeFeed(_SqlChangeFeed):
    _dialect = "sqlite"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = for_reads(engine)
        super().__init__()

    async def _snapshot(self, statements: Sequence[tuple[Any, dict[str, Any]]]) -> list[Sequence[Sequence[Any]]]:
        try:
            async with self._engine.connect() as connection:
                # A read transaction (deferred: it takes no write lock): one snapshot for all.
                await connection.exec_driver_sql("BEGIN")
                try:
                    return [(await connection.execute(statement, values)).all() for statement, values in statements]
                finally:
                    await connection.exec_driver_sql("ROLLBACK")
        except (DBAPIError, OSError) as error:
            raise storage_unavailable(error) from error

    async def _one(self, statement: Any, values: dict[str, Any]) -> Sequence[Sequence[Any]]:
        try:
            async with self._engine.connect() as connection:
                return (await connection.execute(statement, values)).all()
        except (DBAPIError, OSError) as error:
            raise storage_unavailable(error) from error


class PurgeLock(Protocol):
    def exclusively(self) -> AbstractAsyncContextManager[bool]: ...


class SqlRetention:
    """The `Retention` port: each batch a transaction of a unit of work made by `uow_factory`;
    one process at a time by `lock` (`purge_lock`)."""

    def __init__(self, uow_factory: Callable[[], PostgresUnitOfWork | SqlAlchemyUnitOfWork], lock: PurgeLock) -> None:
        self._uow_factory = uow_factory
        self._lock = lock
        # Where the next batch starts: when the newest row of the previous batch was written
        # (a lower bound on the index, so that a batch does not walk the index entries of the
        # rows deleted before it, which stay until vacuum; a backlog would cost ever longer
        # batches). Forgotten at each round: rows a batch left behind are found next round.
        self._tombstones_from = self._keys_from = EPOCH
        self._finished_from: dict[str, datetime] = {}

    @contextlib.asynccontextmanager
    async def exclusively(self) -> AsyncIterator[bool]:
        async with self._lock.exclusively() as alone:
            if alone:
                self._tombstones_from = self._keys_from = EPOCH
                self._finished_from = {}
            yield alone

    async def purge_tombstones(self, *, deleted_before: datetime, limit: int) -> int:
        async with self._uow_factory() as uow:
            purged, newest = await uow.retention.purge_tombstones(
                deleted_before=deleted_before, limit=limit, deleted_from=self._tombstones_from
            )
            await uow.commit()
        self._tombstones_from = newest or self._tombstones_from
        return purged

    async def purge_keys(self, *, recorded_before: datetime, limit: int) -> int:
        async with self._uow_factory() as uow:
            purged, newest = await uow.retention.purge_keys(
                recorded_before=recorded_before, limit=limit, recorded_from=self._keys_from
            )
            await uow.commit()
        self._keys_from = newest or self._keys_from
        return purged

    async def purge_deliveries(self, *, finished_before: datetime, limit: int) -> int:
        # Delivered ones first (nearly all), then the failed: one state at a time, so that a
        # batch walks the index on (state, next_attempt_at) in order.
        purged = 0
        async with self._uow_factory() as uow:
            for state in (DeliveryState.DELIVERED, DeliveryState.FAILED):
                count, newest = await uow.webhooks.purge_finished(
                    state=state,
                    finished_before=finished_before,
                    limit=limit - purged,
                    finished_from=self._finished_from.get(state, EPOCH),
                )
                self._finished_from[state] = newest or self._finished_from.get(state, EPOCH)
                purged += count
                if purged >= limit:
                    break
            await uow.commit()
        return purged
