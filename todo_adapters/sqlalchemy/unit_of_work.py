"""The unit of work: one connection, one transaction, rolled back unless committed."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from todo_adapters.broker import ChangeBroker
from todo_adapters.sqlalchemy.bundle import SqlRepositories
from todo_adapters.sqlalchemy.engine import for_reads, sqlite_writers
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.import_slices import RecordingExecutor, WriteAhead, WriterTurns, write_in_slices
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_core.errors import Conflict


class SqlAlchemyUnitOfWork(SqlRepositories):
    """With `read_only`, no transaction at all: each statement sees the latest commits, takes
    no lock (not even SQLite's write lock) and costs no BEGIN or ROLLBACK round trip. For
    queries that read once; `commit()` is refused.

    The changes it commits are announced on `broker` (SQLite's writers are this process's:
    other processes on the same file do not hear of them).

    On a SQLite file, the tasks of an import (`tasks.add_many`) are written when it commits, a
    large import's in slices that let other writers in between (`import_slices.py`)."""

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False, broker: ChangeBroker | None = None) -> None:
        self._engine = for_reads(engine) if read_only else engine
        self._read_only = read_only
        self._broker = broker
        writers = None if read_only else sqlite_writers(engine)
        self._turns = None if writers is None else WriterTurns(writers)
        self._database = engine.url.database
        self._connection: AsyncConnection | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        self._entered = True
        if self._turns is None:
            await self._open()
        # A SQLite writer opens its transaction later, when it first takes a user's change number
        # (its first statement on the user's rows), so that it waits for its turn as that
        # user's writer (`SqliteWriters`); or at its first statement, if that comes first.
        executor = self._executor = RecordingExecutor(self._connection, opening=self._open)
        self._ahead = WriteAhead() if self._turns is not None else None
        self._changes = ChangeNumbers(
            executor,
            taking=not self._read_only,
            refusing_imports=not self._read_only,
            first=None if self._turns is None else self._open,
        )
        self._open_repositories(executor, self._changes, self._ahead)
        return self

    async def _open(self, user_id: str | None = None) -> AsyncConnection:
        """The unit of work's connection, its transaction begun (unless it only reads), after
        the writer's turn (SQLite) of a write of this user's (None: not known)."""
        if self._connection is not None:
            return self._connection
        if self._turns is not None:
            await self._turns.take(user_id)
        try:
            connection = self._connection = await self._engine.connect()
            if not self._read_only:
                await connection.begin()
        except BaseException as error:
            await self._close()  # and give up the writer's turn, or the next writer waits for ever
            if isinstance(error, DBAPIError | OSError | PoolTimeout):  # unreachable, or every connection busy
                raise storage_unavailable(error) from error
            raise
        return connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._entered = False
        await self._close()  # closing rolls back whatever was not committed
        if isinstance(exc, IntegrityError):
            raise Conflict("the change clashes with a concurrent one; try again") from exc
        if isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            raise storage_unavailable(exc) from exc

    async def commit(self) -> None:
        assert self._entered, "commit() outside `async with`"
        assert not self._read_only, "commit() in a read-only unit of work"
        if self._connection is None:  # not one statement ran: nothing to commit
            return
        ahead = self._ahead
        if ahead is not None and ahead.task_rows:
            self._ahead = None
            if ahead.sliced and self._turns is not None and self._database:
                await write_in_slices(
                    self._connection, self._database, ahead, self._executor, self._turns, self._commit_now
                )
                return
            await ahead.write(self._connection)
        await self._commit_now()

    async def _commit_now(self) -> None:
        assert self._connection is not None
        numbers = {user_id: await self._changes.current(user_id) for user_id in self._changes.changed}
        wakes = self._broker is not None and bool(self.webhooks.written) and await self.webhooks.wakes_deliverer()
        await self._connection.commit()
        if self._broker is not None:
            for user_id, seq in numbers.items():
                self._broker.publish(user_id, seq)
            if wakes:
                self._broker.ring_outbox()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                # A connection that is already gone fails to close; the pool will not reuse it.
                with contextlib.suppress(DBAPIError, OSError):
                    await connection.close()
        finally:
            if self._turns is not None and self._turns.held:
                self._turns.give()
