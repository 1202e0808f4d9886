"""How an export reaches a client without holding anything the other users need.

The document is read from the snapshot at the database's pace into a spool (memory up to
`SPOOL_MEMORY_BYTES`, then a temporary file), and the snapshot and its connection are let go
before the first byte is sent: a slow client holds a socket and a spool, never a connection.
It is then sent at the client's pace, with its length (a cut document is seen as cut), within a
total time bound. A user has one export running at a time, across every process that serves the
database (`AccountLocks`); another is a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import IO, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from todo_core.errors import DomainError

logger = logging.getLogger(__name__)

#: What a spool holds in memory before it moves to a temporary file.
SPOOL_MEMORY_BYTES = 1 << 20
#: The longest an export may take to send: a client reading 10 KB/s takes 18 MB in this time.
EXPORT_SEND_SECONDS = 30 * 60
#: What a user told that their export is running is asked to wait before trying again.
EXPORT_RETRY_AFTER_SECONDS = 10
_CHUNK_BYTES = 64 * 1024
#: A bound on reading an account into its spool, for the lapse of a slot never let go.
_READ_SECONDS = 5 * 60


class ExportRunning(DomainError):
    """The user has an export running; one at a time."""


class AccountLocks(Protocol):
    """Locks that other processes serving the same database see (todo_adapters/sqlalchemy/export_locks.py)."""

    def holding(self, user_id: str) -> AbstractAsyncContextManager[bool]:
        """True for a block that holds the user's export lock, False if another process holds it.

        :raises StorageUnavailable: the lock cannot be tried.
        """
        ...


class RunningExports:
    """The users with an export running in this process, how long one may take to send, and
    (with `locks`) the lock each holds against the other processes' exports of the account."""

    def __init__(self, send_seconds: float = EXPORT_SEND_SECONDS, locks: AccountLocks | None = None) -> None:
        self.send_seconds = send_seconds
        self._locks = locks
        #: User → when their export's slot lapses, should it never be let go (a response that
        #: was made but never sent), and what it holds: one lost response does not lock a user
        #: out for good, here or in the other processes.
        self._running: dict[str, tuple[float, contextlib.AsyncExitStack]] = {}

    @contextlib.asynccontextmanager
    async def claim(self, user_id: str) -> AsyncIterator[None]:
        """The user's export slot for the block.

        :raises ExportRunning: the user has another export running, in this process or another.
        :raises StorageUnavailable: the other processes' exports cannot be checked.
        """
        now = time.monotonic()
        running = self._running.get(user_id)
        if running is not None:
            if running[0] > now:
                raise ExportRunning("an export of this account is running; retry when it is done")
            del self._running[user_id]
            await running[1].aclose()  # lapsed: let go of what it held
        held = contextlib.AsyncExitStack()
        claimed = self._running[user_id] = (now + self.send_seconds + _READ_SECONDS, held)
        try:
            async with held:
                if self._locks is not None and not await held.enter_async_context(self._locks.holding(user_id)):
                    raise ExportRunning(
                        "an export of this account is running in another process; retry when it is done"
                    )
                yield
        finally:
            if self._running.get(user_id) is claimed:
                del self._running[user_id]


async def spooled(parts: AsyncIterator[bytes]) -> IO[bytes]:
    """The parts, written to a spool that is rewound for reading (the caller closes it)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - handed to the response
    try:
        async for part in parts:
            await asyncio.to_thread(spool.write, part)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


class SpooledDocument(Response):
    """A JSON document sent from its spool at the client's pace, then the spool closed and the
    export's slot (`slot`, a context that is open) let go, however the sending ended."""

    media_type = "application/json"

    def __init__(self, spool: IO[bytes], slot: contextlib.AsyncExitStack, send_seconds: float) -> None:
        length = spool.seek(0, 2)
        spool.seek(0)
        super().__init__(None, headers={"Content-Length": str(length)})
        self._spool = spool
        self._slot = slot
        self._send_seconds = send_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._slot:
            with self._spool:
                try:
                    async with asyncio.timeout(self._send_seconds):
                        await self._send(send)
                except TimeoutError:
                    # The connection closes short of Content-Length: the client knows it is cut.
                    logger.warning("an export took longer than %s s to send and was cut", self._send_seconds)
                except OSError:
                    pass  # the client went away

    async def _send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        while chunk := await asyncio.to_thread(self._spool.read, _CHUNK_BYTES):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
