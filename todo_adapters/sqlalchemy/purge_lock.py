"""What keeps purges to one process at a time, across workers and replicas: whoever tries while
another holds it skips its round (the holder drains the same rows). It saves work and contention
only: two purges at once would still be correct (each deletes by key, horizons never move back).
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import AsyncIterator

import psycopg
from sqlalchemy.engine import URL

from todo_adapters.sqlalchemy.psycopg import UNREACHABLE
from todo_core.errors import StorageUnavailable

#: The advisory lock a purge holds: a number no other application of the database should use
#: ("todopurg" in ASCII).
PURGE_LOCK_KEY = 0x746F646F_70757267
#: How the lock's connection shows in `pg_stat_activity`.
APPLICATION_NAME = "todo purge"
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"


class PostgresPurgeLock:
    """A transaction-level advisory lock, tried (never waited for), held by a transaction left
    open for the block on a connection of its own.

    Its own connection, not a pooled one: the purge's batches take pooled connections meanwhile
    (with a pool of one they would wait for ever). Transaction-level, not session-level: through
    a pooler in transaction mode (PgBouncer), a session's lock would stay behind on a server
    connection that is then lent to others, while a transaction keeps its server connection to
    its end. The transaction takes no snapshot between statements and writes nothing: it holds
    back neither vacuum nor anyone's writes.
    """

    def __init__(self, url: URL, *, timeout: float) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._timeout = timeout

    @contextlib.asynccontextmanager
    async def exclusively(self) -> AsyncIterator[bool]:
        """True for a block that holds the lock; False if another process holds it.

        :raises StorageUnavailable: the database cannot be reached.
        """
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, connect_timeout=max(2, round(self._timeout)), application_name=APPLICATION_NAME
            )
        except UNREACHABLE as error:
            raise StorageUnavailable("the database cannot be reached") from error
        # One statement, once: psycopg prepares nothing (a pooler in transaction mode is fine).
        async with connection:  # ended and closed after the block: the lock goes with the transaction
            try:
                cursor = await connection.execute(_TRY_LOCK, [PURGE_LOCK_KEY])
                row = await cursor.fetchone()
            except UNREACHABLE as error:
                raise StorageUnavailable("the database cannot be reached") from error
            yield bool(row and row[0])


class SqlitePurgeLock:
    """A lock file beside the database file (`<file>.purge-lock`), locked with `flock`, tried
    (never waited for); released at the end of the block, or by the system if the process dies.
    SQLite serves the processes of one machine, which all see the file. A database in memory
    belongs to one process: a flag of this object's."""

    def __init__(self, url: URL) -> None:
        database = url.database
        self._path = f"{database}.purge-lock" if database and database != ":memory:" else None
        self._held = False

    @contextlib.asynccontextmanager
    async def exclusively(self) -> AsyncIterator[bool]:
        """True for a block that holds the lock; False if another process holds it.

        :raises StorageUnavailable: the lock file cannot be opened.
        """
        if self._path is None:
            if self._held:
                yield False
                return
            self._held = True
            try:
                yield True
            finally:
                self._held = False
            return
        try:
            file = open(self._path, "a")  # noqa: SIM115 (closed below, after the block)
        except OSError as error:
            raise StorageUnavailable(f"the purge's lock file cannot be opened: {error}") from error
        with file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)
