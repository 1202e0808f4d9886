"""One export per account across every worker and replica: the lock an export holds from the
moment it is accepted until its last byte is sent (or its connection to the client is lost).

Not on the connection the export reads with: that one is let go before the first byte is sent
(a slow client must hold no pooled connection), while the lock must last as long as the send.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from todo_adapters.sqlalchemy.psycopg import UNREACHABLE
from todo_core.errors import StorageUnavailable

log = logging.getLogger(__name__)

#: How the locks' connection shows in `pg_stat_activity`.
APPLICATION_NAME = "todo exports"
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


def export_key(user_id: str) -> int:
    """The advisory lock key of a user's export: 64 bits of a hash of the user id, told apart
    from the keys of other locks by its own personalisation (a collision: 1 in 2^64)."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8, person=b"todo export").digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresExportLocks:
    """Session-level advisory locks (`pg_try_advisory_lock`, tried, never waited for), one per
    running export, all held by one connection of the process's own.

    One connection for every export of the process, not one per export: connections are bounded
    by processes, however many clients export slowly at once. A lock goes when its export ends
    (`pg_advisory_unlock`), or when the connection dies (the process with it), whatever ended it.
    Session-level because the exports of a process begin and end in any order; so the connection
    must be a session of its own: behind a pooler in transaction mode, give the database directly
    (`TODO_LISTEN_DATABASE_URL`, which LISTEN needs for the same reason).
    """

    def __init__(self, url: URL, *, timeout: float) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._timeout = timeout
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._connecting = asyncio.Lock()
        self._releasing: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def holding(self, user_id: str) -> AsyncIterator[bool]:
        """True for a block that holds the user's export lock; False if another process holds it.

        :raises StorageUnavailable: the database cannot be reached.
        """
        key = export_key(user_id)
        # Shielded: a statement cut half-way would leave the shared connection out of step, and a
        # lock taken by a try whose caller went away would never be let go.
        trying = asyncio.ensure_future(self._try(key))
        try:
            connection, held = await asyncio.shield(trying)
        except asyncio.CancelledError:
            trying.add_done_callback(lambda done: self._release_after(done, key))
            raise
        if not held:
            yield False
            return
        try:
            yield True
        finally:
            await asyncio.shield(self._release(connection, key))

    async def _try(self, key: int) -> tuple[psycopg.AsyncConnection[Any], bool]:
        try:
            connection = await self._connected()
            row = await (await connection.execute(_TRY_LOCK, [key])).fetchone()
        except UNREACHABLE as error:
            raise StorageUnavailable("the database cannot be reached") from error
        return connection, bool(row and row[0])

    async def _connected(self) -> psycopg.AsyncConnection[Any]:
        async with self._connecting:
            if self._connection is None or self._connection.closed or self._connection.broken:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=max(2, round(self._timeout)),
                    application_name=APPLICATION_NAME,
                )
            return self._connection

    async def _release(self, connection: psycopg.AsyncConnection[Any], key: int) -> None:
        if connection.closed or connection.broken:
            return  # the session ended, and its locks with it
        try:
            await connection.execute(_UNLOCK, [key])
        except UNREACHABLE:
            # Broken: the server ends the session, and so lets go of every lock it held.
            log.warning("the export locks' connection broke: closing it (its locks go with it)")
            await connection.close()

    def _release_after(self, attempt: asyncio.Future[tuple[psycopg.AsyncConnection[Any], bool]], key: int) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result()[1]:
            releasing = asyncio.ensure_future(self._release(attempt.result()[0], key))
            self._releasing.add(releasing)  # kept until done: the loop holds only weak references
            releasing.add_done_callback(self._releasing.discard)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


class SqliteExportLocks:
    """A lock file per running export beside the database file (`<file>.export-<hash of the
    user id>`), locked with `flock`, tried (never waited for), and deleted by its holder when the
    export ends; released by the system if the process dies. SQLite serves the processes of one
    machine, which all see the files. A database in memory belongs to one process, whose own
    count of running exports is enough."""

    def __init__(self, url: URL) -> None:
        database = url.database
        self._prefix = f"{database}.export-" if database and database != ":memory:" else None

    @contextlib.asynccontextmanager
    async def holding(self, user_id: str) -> AsyncIterator[bool]:
        """True for a block that holds the user's export lock; False if another process holds it.

        :raises StorageUnavailable: the lock file cannot be opened.
        """
        if self._prefix is None:
            yield True
            return
        path = self._prefix + format(export_key(user_id) & (2**64 - 1), "016x")
        try:
            file = _locked(path)
        except OSError as error:
            raise StorageUnavailable(f"an export's lock file cannot be opened: {error}") from error
        if file is None:
            yield False
            return
        try:
            yield True
        finally:
            # Deleted while still locked: whoever opened it meanwhile finds, once locked, that the
            # path no longer names its file (`_locked`), and opens the path again.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(file)


def _locked(path: str) -> int | None:
    """The descriptor of `path`, locked; None if another holds it."""
    for _ in range(3):
        file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(file)
            return None
        try:
            opened, named = os.fstat(file), os.stat(path)
            if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino):
                return file
        except FileNotFoundError:
            pass
        os.close(file)  # its holder deleted it after we opened it: the path names a new one
    return None
