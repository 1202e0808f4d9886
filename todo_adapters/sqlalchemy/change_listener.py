"""PostgreSQL's announcements of committed changes (and of reminders that fell due, and of
events written to the outbox), heard on one connection per process.

A transaction that changes a user's data sends `NOTIFY todo_changes, '<change number>:<user
id>'`; PostgreSQL delivers it to every listening connection when, and only if, the
transaction commits. Each process keeps one connection listening (not one per event stream)
and publishes what it hears on its `ChangeBroker`, which wakes that user's streams in the
process: a change made by any worker of any replica reaches every stream.

Notifications sent while a connection is not listening are lost, and so is one whose sender
failed between its commit and its `NOTIFY` (sent after the commit, see `psycopg._ANNOUNCE`). So
whenever the listener (re)connects, after its `LISTEN` is in place, and then every
`CATCH_UP_SECONDS`, it reads the current change number of every user with an open stream and
publishes those: a stream that missed a notification announces the newest position once, within
that time, and nothing is missed (the broker announces no number twice; a client already there
recognises its own token).

The same connection hears `REMINDERS_CHANNEL` (a reminder for a user's streams, see
`reminder_announcer`) and `OUTBOX_CHANNEL` (wake the delivery loop, see `webhooks.RING`); each
(re)connection also wakes the delivery loop, which looks at what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from todo_adapters.broker import ChangeBroker
from todo_adapters.sqlalchemy import reminder_announcer
from todo_adapters.sqlalchemy.psycopg import CHANGES_CHANNEL
from todo_adapters.sqlalchemy.reminder_announcer import REMINDERS_CHANNEL
from todo_adapters.sqlalchemy.webhooks import OUTBOX_CHANNEL

log = logging.getLogger(__name__)

#: How often the listener reads the change numbers of the users with an open stream, catching up
#: on notifications that were lost; the query also checks the connection: a peer gone without
#: closing it (a network cut) is noticed within this time.
CATCH_UP_SECONDS = 5.0
#: How long connecting, or a check of the connection, may take before it counts as lost.
CONNECT_TIMEOUT_SECONDS = 5.0
#: How the listening connection shows in `pg_stat_activity`.
APPLICATION_NAME = "todo change listener"
_CURRENT_NUMBERS = "SELECT user_id, seq FROM user_changes WHERE user_id = ANY(%s)"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between reconnection attempts: doubling from `first` up to `longest`, each drawn
    from its upper half so that the replicas of a restarted database do not all come at once."""

    first: float = 0.5
    longest: float = 10.0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row (1 or more)."""
        ceiling = min(self.longest, self.first * 2.0 ** min(failures - 1, 32))
        return ceiling * random.uniform(0.5, 1.0)


class PostgresChangeListener:
    """The process's listening connection, kept open from `start()` to `stop()`: reconnected
    with backoff whenever it fails, while the event streams it feeds keep running."""

    def __init__(
        self,
        url: URL,
        broker: ChangeBroker,
        *,
        backoff: Backoff | None = None,
        catch_up_seconds: float = CATCH_UP_SECONDS,
    ) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._broker = broker
        self._backoff = backoff or Backoff()
        self._catch_up_seconds = catch_up_seconds
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._backend_pid: int | None = None

    def start(self) -> None:
        """Start listening in the background (connecting takes place there)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="change listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def listening(self, timeout: float) -> int:
        """Wait up to `timeout` seconds until the connection listens; return its server
        process id.

        :raises TimeoutError: it did not listen in time.
        """
        async with asyncio.timeout(timeout):  # not wait_for, which may swallow a cancellation (3.11)
            await self._listening.wait()
        assert self._backend_pid is not None
        return self._backend_pid

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as error:
                failures = 1 if self._listening.is_set() else failures + 1
                self._listening.clear()
                delay = self._backoff.delay(failures)
                log.warning("change notifications: connection lost (%s); reconnecting in %.1f s", error, delay)
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        """Listen until the connection fails (it raises then; it never returns)."""
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=APPLICATION_NAME
            )
        async with connection:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                for channel in (CHANGES_CHANNEL, REMINDERS_CHANNEL, OUTBOX_CHANNEL):
                    await connection.execute(f"LISTEN {channel}")
                await self._catch_up(connection)
            self._backend_pid = connection.info.backend_pid
            self._listening.set()
            self._broker.ring_outbox()  # what was written while no one listened is due, maybe
            while True:
                async for notification in connection.notifies(timeout=self._catch_up_seconds):
                    if notification.channel == CHANGES_CHANNEL:
                        self._hear(notification.payload)
                    elif notification.channel == REMINDERS_CHANNEL:
                        self._hear_reminder(notification.payload)
                    else:
                        self._broker.ring_outbox()
                async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                    if not await self._catch_up(connection):
                        await connection.execute("SELECT 1")

    async def _catch_up(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        """Publish the current change number of every user with an open stream; False when
        there is none (and nothing was sent)."""
        users = self._broker.users
        if not users:
            return False
        cursor = await connection.execute(_CURRENT_NUMBERS, [users])
        for user_id, seq in await cursor.fetchall():
            self._broker.publish(user_id, seq)
        return True

    def _hear_reminder(self, payload: str) -> None:
        parsed = reminder_announcer.parse(payload)
        if parsed is None:
            log.warning("reminder notifications: ignored a malformed payload %r", payload[:100])
            return
        self._broker.remind(*parsed)

    def _hear(self, payload: str) -> None:
        # `<change number>:<user id>`; a user id may itself hold colons.
        seq, colon, user_id = payload.partition(":")
        if not (colon and user_id and seq.isascii() and seq.isdigit()):
            log.warning("change notifications: ignored a malformed payload %r", payload[:100])
            return
        self._broker.publish(user_id, int(seq))
