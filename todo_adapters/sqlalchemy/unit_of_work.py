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
from todo_adapters.sqlalchemy.engine import SQLITE_BUSY_SECONDS, sqlite_writers
from todo_adapters.sqlalchemy.execution import SqlAlchemyExecutor
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_core.errors import Conflict, StorageUnavailable


class SqlAlchemyUnitOfWork(SqlRepositories):
    """With `read_only`, no transaction at all: each statement sees the latest commits, takes
    no lock (not even SQLite's write lock) and costs no BEGIN or ROLLBACK round trip. For
    queries that read once; `commit()` is refused.

    The changes it commits are announced on `broker` (SQLite's writers are this process's:
    other processes on the same file do not hear of them)."""

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False, broker: ChangeBroker | None = None) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT") if read_only else engine
        self._read_only = read_only
        self._broker = broker
        self._writers = None if read_only else sqlite_writers(engine)
        self._turn_taken = False
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        if self._writers is not None:
            try:
                await self._writers.acquire(SQLITE_BUSY_SECONDS)
            except TimeoutError as error:
                raise StorageUnavailable("the database is busy; try again") from error
            except OSError as error:
                raise StorageUnavailable("the database cannot be written") from error
            self._turn_taken = True
        try:
            self._connection = await self._engine.connect()
            if not self._read_only:
                await self._connection.begin()
        except BaseException as error:
            await self._close()  # and give up the writer's turn, or the next writer waits for ever
            if isinstance(error, DBAPIError | OSError | PoolTimeout):  # unreachable, or every connection busy
                raise storage_unavailable(error) from error
            raise
        executor = SqlAlchemyExecutor(self._connection)
        self._changes = ChangeNumbers(executor, taking=not self._read_only)
        self._open_repositories(executor, self._changes)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()  # closing rolls back whatever was not committed
        if isinstance(exc, IntegrityError):
            raise Conflict("the change clashes with a concurrent one; try again") from exc
        if isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            raise storage_unavailable(exc) from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside `async with`"
        assert not self._read_only, "commit() in a read-only unit of work"
        numbers = {user_id: await self._changes.current(user_id) for user_id in self._changes.changed}
        await self._connection.commit()
        if self._broker is not None:
            for user_id, seq in numbers.items():
                self._broker.publish(user_id, seq)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                # A connection that is already gone fails to close; the pool will not reuse it.
                with contextlib.suppress(DBAPIError, OSError):
                    await connection.close()
        finally:
            if self._turn_taken:
                self._turn_taken = False
                assert self._writers is not None
                self._writers.release()
