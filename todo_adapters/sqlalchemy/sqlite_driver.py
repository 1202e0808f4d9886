"""SQLite statements run where they are asked for, on the event loop's thread, not one thread hop
each.

aiosqlite runs every call of a connection (open a cursor, execute, fetch, close it: about four a
statement) on a thread of its own and hands each result back through the event loop. A create
is ~9 statements, so ~36 trips: each wakes the loop, and under load waits for the GIL behind the
other requests' Python. On a local file a statement takes tens of microseconds; the trips cost
far more (one process, a create: 9.1 ms of CPU with them, 2.7 ms without; see docs/performance.md
for what `make bench` measures).

So `InlineConnection` runs a call at once, and only what would make the loop wait goes to the
connection's thread:
- A statement that finds the file's write lock held (SQLITE_BUSY: another program, such as
  `todo migrate` or a `sqlite3` shell, is writing; this service's own writers take their turn in
  `SqliteWriters` first, so it is rare) is tried at once with no wait, and on BUSY again on the
  thread, where SQLite's busy timeout waits for the lock.
- Checkpoints: SQLite would copy the write-ahead log into the database file (with an fsync)
  inside the commit that fills it, on the loop. Automatic checkpoints are off; after about
  `CHECKPOINT_ROWS` changed rows a process runs a passive one on the thread.
- Every call on a connection inside `in_thread(connection)`: statements that read or write
  thousands of rows (exports, large imports), which would hold the loop for milliseconds.

A call never suspends the coroutine that makes it, so a long run of statements (a batch of a
hundred creates) would keep every other request waiting until it ends: a connection that has run
calls for `YIELD_AFTER_SECONDS` without letting the loop turn lets it turn before its next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection

#: Rows changed (by this process, on one file) between two checkpoints: a few MB of log.
CHECKPOINT_ROWS = 2_000
#: The longest a connection's run of calls holds the event loop before it lets the loop turn.
YIELD_AFTER_SECONDS = 0.02
#: The calls that a SQLITE_BUSY leaves undone, so that they may run again: a statement, a
#: commit. Not a fetch: its cursor may have moved on, and a second try would lose rows.
_RETRIED = frozenset({"execute", "executemany", "executescript", "commit"})


@contextlib.asynccontextmanager
async def in_thread(connection: AsyncConnection) -> AsyncIterator[None]:
    """Run the connection's SQLite calls on its thread while inside: for statements that handle
    many rows, so that the event loop serves others meanwhile. Any other connection: no change."""
    driver = (await connection.get_raw_connection()).driver_connection
    if not isinstance(driver, InlineConnection):
        yield
        return
    driver.in_thread = True
    try:
        yield
    finally:
        driver.in_thread = False


class _Changes:
    """Rows changed on one file by this process since its last checkpoint."""

    def __init__(self) -> None:
        self.since_checkpoint = 0


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the calling thread, but for those that would
    wait (see the module's docstring)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_seconds: float, changes: _Changes) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._busy_ms = int(busy_seconds * 1000)
        self._changes = changes
        self._counted = 0
        self._turned_at = time.monotonic()
        #: Whether every call goes to the thread (`in_thread`).
        self.in_thread = False

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.in_thread:
            return await self._on_thread(fn, *args, **kwargs)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")  # as aiosqlite words it: SQLAlchemy reads the words
        if time.monotonic() - self._turned_at > YIELD_AFTER_SECONDS:
            await asyncio.sleep(0)  # the loop serves the others that are ready, then this goes on
            self._turned_at = time.monotonic()
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or getattr(fn, "__name__", "") not in _RETRIED:
                raise
        # A statement refused with SQLITE_BUSY did nothing: it runs again, waiting for the lock.
        return await self._on_thread(self._waiting, fn, args, kwargs)

    async def commit(self) -> None:
        await self._execute(self._conn.commit)
        changed = self._conn.total_changes
        self._changes.since_checkpoint += changed - self._counted
        self._counted = changed
        if self._changes.since_checkpoint >= CHECKPOINT_ROWS:
            self._changes.since_checkpoint = 0
            await self._on_thread(_pragma, self._conn, "wal_checkpoint(PASSIVE)")

    async def _on_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _waiting(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        _pragma(self._conn, f"busy_timeout = {self._busy_ms}")
        try:
            return fn(*args, **kwargs)
        finally:
            _pragma(self._conn, "busy_timeout = 0")


def inline_connector(database: str, *, busy_seconds: float) -> Callable[[], InlineConnection]:
    """An `async_creator` for SQLAlchemy's aiosqlite dialect: connections to `database` whose
    writes wait up to `busy_seconds` for a lock another program holds."""
    changes = _Changes()

    def connector() -> sqlite3.Connection:
        # Opened on the connection's thread, used on the loop's too (never by two at once: a
        # connection is lent to one unit of work at a time). No busy wait on the loop (timeout 0).
        connection = sqlite3.connect(database, timeout=0, check_same_thread=False)
        _pragma(connection, "wal_autocheckpoint = 0")
        return connection

    def connect() -> InlineConnection:
        connection = InlineConnection(connector, busy_seconds, changes)
        connection._thread.daemon = True  # as SQLAlchemy sets it on the connections aiosqlite makes
        return connection

    return connect


def _pragma(connection: sqlite3.Connection, pragma: str) -> None:
    # A pragma answers a row: read, so that no statement stays in progress (which would refuse
    # the next COMMIT).
    connection.execute(f"PRAGMA {pragma}").fetchall()
