"""Large imports on SQLite, written in slices that never hold the database's one writer lock
for long, and still all or nothing.

SQLite has one writer at a time: an import of 20,000 tasks written in its own transaction held
every other user's writes for seconds. Instead, a unit of work keeps the tasks an import hands
it (`WriteAhead`) until it commits, and then, when there are more than `INLINE_MOST`:

1. It rolls its transaction back (nothing of it is kept) and, still holding the writer lock,
   marks the user as importing (`user_changes.importing`, the import's token) without moving
   the user's change number `seq`. Until the mark goes, the user's other writes are refused
   (429 `user-busy`, as a user's writes queued on an import are on PostgreSQL).
2. It writes the tasks in slices, each a transaction of its own of about `SLICE_SECONDS`, the
   writer lock let go between them: other users' writes go in between. The tasks carry the
   number `seq + 1`, above the user's: no read shows them (`visibility.py`).
3. It takes the lock again, clears the mark, runs again every statement the transaction had run
   before (`RecordingExecutor`: the idempotency key, the categories, the settings, the change
   number, which becomes `seq + 1`: the number the tasks carry), and commits. Every task
   appears at once, in one change.

A failure on the way (an exception, a cancelled request) deletes what was written, in slices,
and clears the mark. A crash leaves them: the import holds a lock file (`<database>-import-
<token>`, `flock`) while it runs, and `sweep_abandoned_imports` (at startup and in every
maintenance round) deletes what imports whose lock file is free left behind. Until then their
rows are not shown, and their user's writes are refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement

from todo_adapters.sqlalchemy.engine import (
    SQLITE_BUSY_SECONDS,
    SQLITE_OWN_WRITES_SECONDS,
    OwnWritesAhead,
    SqliteWriters,
    sqlite_writers,
)
from todo_adapters.sqlalchemy.execution import DuplicateKey, SqlAlchemyExecutor, Values
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.sqlite_driver import in_thread
from todo_adapters.sqlalchemy.tables import task_tags, tasks, user_changes
from todo_core.errors import Conflict, StorageUnavailable, UserBusy

logger = logging.getLogger(__name__)

#: An import of at most this many tasks is written in its unit of work's own transaction.
INLINE_MOST = 500
#: How long a slice holds the writer lock, about (it ends after the batch that passes it).
SLICE_SECONDS = 0.1
#: Rows written per statement within a slice.
SLICE_BATCH = 100
#: Rows an abandoned import's clean-up deletes per transaction.
_DELETE_BATCH = 500

_MARK = text(
    "INSERT INTO user_changes (user_id, seq, horizon, importing) VALUES (:user_id, :seq, 0, :token) "
    "ON CONFLICT (user_id) DO UPDATE SET importing = :token "
    "WHERE user_changes.importing IS NULL AND user_changes.seq = :seq"
)
_UNMARK = (
    update(user_changes)
    .where(user_changes.c.user_id == bindparam("b_user_id"), user_changes.c.importing == bindparam("token"))
    .values(importing=None)
)
_NUMBER = select(user_changes.c.seq).where(user_changes.c.user_id == bindparam("user_id"))
_MARKED = select(user_changes.c.user_id, user_changes.c.importing).where(user_changes.c.importing.is_not(None))
_STILL_MARKED = (
    select(user_changes.c.seq)
    .where(user_changes.c.user_id == bindparam("user_id"), user_changes.c.importing == bindparam("token"))
    .scalar_subquery()
)
#: A batch of the rows an import wrote ahead (above the user's number), while it is still marked.
_LEFT_BEHIND = (
    select(tasks.c.id)
    .where(tasks.c.user_id == bindparam("user_id"), tasks.c.change_seq > _STILL_MARKED)
    .limit(_DELETE_BATCH)
)
_DELETE_TAGS = delete(task_tags).where(
    task_tags.c.user_id == bindparam("user_id"), task_tags.c.task_id.in_(bindparam("ids", expanding=True))
)
_DELETE_TASKS = delete(tasks).where(
    tasks.c.user_id == bindparam("user_id"), tasks.c.id.in_(bindparam("ids", expanding=True))
)


class WriteAhead:
    """The rows of the tasks an import handed a unit of work, and of their tags, kept until it
    commits (see the module's docstring)."""

    def __init__(self) -> None:
        self.task_rows: list[Mapping[str, Any]] = []
        self.tag_rows: list[Mapping[str, Any]] = []
        #: Each user's change number, as the unit of work took it.
        self.numbers: dict[str, int] = {}

    def add(self, user_id: str, number: int, task_rows: Sequence[Values], tag_rows: Sequence[Values]) -> None:
        self.numbers[user_id] = number
        self.task_rows += task_rows
        self.tag_rows += tag_rows

    @property
    def sliced(self) -> bool:
        """Whether the rows are to be written in slices: many, and one user's."""
        return len(self.task_rows) > INLINE_MOST and len(self.numbers) == 1

    async def write(self, connection: AsyncConnection) -> None:
        """Write every row in the connection's transaction."""
        async with in_thread(connection):  # many rows: written beside the event loop
            for table, rows in ((tasks, self.task_rows), (task_tags, self.tag_rows)):
                if rows:
                    await connection.execute(table.insert(), rows)


class RecordingExecutor(SqlAlchemyExecutor):
    """An executor that remembers the statements that change something (`run`, `count`), so
    that another transaction can run them again (`replay`). Reads (`rows`) are not kept."""

    def __init__(
        self, connection: AsyncConnection | None, *, opening: Callable[[], Awaitable[AsyncConnection]] | None = None
    ) -> None:
        super().__init__(connection, opening=opening)
        self._log: list[tuple[ClauseElement, Values | Sequence[Values]]] = []

    async def run(self, statement: ClauseElement, values: Values | Sequence[Values]) -> None:
        self._log.append((statement, values))
        await super().run(statement, values)

    async def count(self, statement: ClauseElement, values: Values) -> int:
        self._log.append((statement, values))
        return await super().count(statement, values)

    @contextlib.asynccontextmanager
    async def guarded(self) -> AsyncIterator[None]:
        kept = len(self._log)
        try:
            async with super().guarded():
                yield
        except DuplicateKey:
            del self._log[kept:]  # undone: not to be run again
            raise

    async def replay(self, connection: AsyncConnection) -> None:
        for statement, values in self._log:
            await connection.execute(statement, values)  # type: ignore[call-overload]


class Turns(Protocol):
    """The writer's turns of a SQLite file, as one unit of work takes them."""

    held: bool

    async def take(self, user_id: str | None, *, patient: bool = False) -> None:
        """Wait for the turn of a write of this user's (None: not known). `patient`: as long
        behind the user's own earlier writes as behind anyone's (an import's slices and clean-up).

        :raises UserBusy: not `patient`, and it waited too long behind the user's earlier writes.
        :raises StorageUnavailable: no turn came in time."""
        ...

    def give(self) -> None: ...


async def write_in_slices(
    connection: AsyncConnection,
    database: str,
    ahead: WriteAhead,
    recorded: RecordingExecutor,
    turns: Turns,
    commit: Callable[[], Awaitable[None]],
) -> None:
    """Steps 1-3 of the module's docstring, then `commit()`. Called with the writer's turn held
    and a transaction open on `connection`. On failure, nothing of the import is kept.

    :raises Conflict: the import was abandoned meanwhile (its mark is gone); nothing is kept.
    """
    ((user_id, number),) = ahead.numbers.items()
    token = secrets.token_hex(16)
    with _ImportLock(database, token):
        await connection.rollback()
        await connection.begin()
        marked = await connection.execute(_MARK, {"user_id": user_id, "seq": number - 1, "token": token})
        await connection.commit()
        turns.give()
        try:
            if marked.rowcount != 1:  # the writer's turn was held throughout: not expected
                raise Conflict("the account changed while the import was prepared; try again")
            for table, rows in ((tasks, ahead.task_rows), (task_tags, ahead.tag_rows)):
                start = 0
                while start < len(rows):
                    await turns.take(user_id, patient=True)
                    await connection.begin()
                    began = time.monotonic()
                    while start < len(rows) and time.monotonic() - began < SLICE_SECONDS:
                        async with in_thread(connection):  # a batch of many rows: beside the event loop
                            await connection.execute(table.insert(), rows[start : start + SLICE_BATCH])
                        start += SLICE_BATCH
                    await connection.commit()
                    turns.give()
            await turns.take(user_id, patient=True)
            await connection.begin()
            unmarked = await connection.execute(_UNMARK, {"b_user_id": user_id, "token": token})
            if unmarked.rowcount != 1:
                raise Conflict("the import was abandoned before it committed; try again")
            await recorded.replay(connection)
            seq = (await connection.execute(_NUMBER, {"user_id": user_id})).scalar()
            if seq != number:
                raise Conflict("the account changed while the import was written; try again")
            await commit()
        except BaseException:
            try:
                if connection.in_transaction():
                    await connection.rollback()
                if turns.held:
                    turns.give()
                await abandon(connection, user_id, token, turns)
            except Exception:
                logger.exception("an import that failed could not delete what it wrote; the next sweep will")
            raise


async def abandon(connection: AsyncConnection, user_id: str, token: str, turns: Turns) -> int:
    """Delete, a batch per transaction, the rows the import `token` wrote ahead for the user,
    then clear its mark; return how many tasks. Only while the mark is the import's: an import
    that committed (or was cleared) meanwhile is left alone."""
    deleted = 0
    while True:
        await turns.take(user_id, patient=True)
        try:
            await connection.begin()
            values = {"user_id": user_id, "token": token}
            ids = [row[0] for row in await connection.execute(_LEFT_BEHIND, values)]
            if ids:
                await connection.execute(_DELETE_TAGS, {"user_id": user_id, "ids": ids})
                await connection.execute(_DELETE_TASKS, {"user_id": user_id, "ids": ids})
            else:
                await connection.execute(_UNMARK, {"b_user_id": user_id, "token": token})
            await connection.commit()
        finally:
            if connection.in_transaction():
                await connection.rollback()
            turns.give()
        if not ids:
            return deleted
        deleted += len(ids)


async def sweep_abandoned_imports(engine: AsyncEngine) -> int:
    """Delete what imports that no process runs any more (their lock file is free: the process
    died) wrote ahead, and clear their marks; return how many tasks. SQLite files only.

    :raises StorageUnavailable: the database cannot be reached or written.
    """
    writers = sqlite_writers(engine)
    database = engine.url.database
    if writers is None or database is None:
        return 0
    deleted = 0
    async with engine.connect() as connection:
        try:
            marked = (await connection.execute(_MARKED)).all()
        except DBAPIError as error:  # SchemaMissing before `todo migrate`: nothing to sweep
            raise storage_unavailable(error) from error
        await connection.rollback()
        for user_id, token in marked:
            with _ImportLock.if_abandoned(database, token) as abandoned:
                if not abandoned:
                    continue
                count = await abandon(connection, user_id, token, WriterTurns(writers))
                logger.warning("deleted %d tasks that an interrupted import had written ahead", count)
                deleted += count
    return deleted


class WriterTurns:
    """`Turns` on a SQLite file's writers."""

    def __init__(self, writers: SqliteWriters) -> None:
        self._writers = writers
        self.held = False

    async def take(self, user_id: str | None, *, patient: bool = False) -> None:
        own_seconds = None if patient else SQLITE_OWN_WRITES_SECONDS
        try:
            await self._writers.acquire(SQLITE_BUSY_SECONDS, user_id, own_seconds=own_seconds)
        except OwnWritesAhead as error:
            raise UserBusy(
                f"This write waited over {error.seconds:g} s for the same user's earlier writes, which run one "
                "after the other; nothing of it was applied. Retry shortly."
            ) from error
        except TimeoutError as error:
            raise StorageUnavailable("the database is busy; try again") from error
        except OSError as error:
            raise StorageUnavailable("the database cannot be written") from error
        self.held = True

    def give(self) -> None:
        self.held = False
        self._writers.release()


class _ImportLock:
    """The lock file of a running import, `<database>-import-<token>`: held (`flock`) while the
    import runs, let go by the system if its process dies."""

    def __init__(self, database: str, token: str) -> None:
        self._path = _lock_path(database, token)
        self._file: int | None = None

    def __enter__(self) -> _ImportLock:
        self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._file is not None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        os.close(self._file)

    @staticmethod
    @contextlib.contextmanager
    def if_abandoned(database: str, token: str) -> Any:
        """True for a block that holds the lock of an import no process runs; False if one does."""
        path = _lock_path(database, token)
        file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        finally:
            os.close(file)


def _lock_path(database: str, token: str) -> str:
    if not token.isalnum():  # a token is hex: never a path of its own
        raise ValueError("not an import's token")
    return f"{database}-import-{token}"
