"""PostgreSQL through psycopg's own connection pool: the units of work and the task views of a
process share it. (SQLAlchemy's engine still makes the schema: Alembic.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import text
from sqlalchemy.engine import URL

from todo_adapters.sqlalchemy.bundle import SqlRepositories
from todo_adapters.sqlalchemy.engine import SESSION_TIMEZONE, PoolUsage
from todo_adapters.sqlalchemy.execution import PsycopgExecutor
from todo_adapters.sqlalchemy.faults import storage_unavailable
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_core.errors import Conflict, StorageUnavailable, UserBusy

log = logging.getLogger(__name__)

#: What psycopg raises when the server cannot be reached or the connection broke.
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, OSError)
#: How long psycopg's pool keeps retrying one lost connection before it gives up (see below).
RECONNECT_SECONDS = 2.0
#: The longest a write waits for its user's change number (at most half the statement timeout),
#: whose row lock the same user's other writes hold until they commit (`ChangeNumbers`): past
#: this wait it is refused (`UserBusy`, 429) rather than left to queue until the statement
#: timeout, which answered 503 "database unreachable" and sent every queued client back to retry
#: into the same queue.
USER_LOCK_SECONDS = 1.0

#: The channel a committed change of a user's data is announced on: `<change number>:<user id>`.
CHANGES_CHANNEL = "todo_changes"
# Sent right after COMMIT, in the same pipeline (no extra round trip), as a transaction of its own.
# Not inside the writing transaction: a transaction that has notified takes a database-wide lock
# at commit and holds it through its WAL flush, so every notifying commit of the cluster would
# wait for the one before. A transaction that only notifies writes no WAL of its own and does
# not wait for a flush: the lock is held for microseconds. The number is read after the commit,
# so it is the user's newest. If the announcement is lost (the connection breaks between the
# two), listeners catch up on their own (see `change_listener`).
_ANNOUNCE = text(
    f"SELECT pg_notify('{CHANGES_CHANNEL}', "
    "(SELECT seq FROM user_changes WHERE user_id = :user_id)::text || ':' || :user_id)"
)


class PostgresPool:
    """Autocommit connections (a unit of work opens its own transaction), opened on first use:
    a pool needs a running event loop.

    `timeout` bounds a request's wait for a connection and each statement's run (PostgreSQL's
    `statement_timeout`), so that a request answers, or fails with `StorageUnavailable`, in
    bounded time whatever the database does.

    `transaction_pooler`: the URL names a pooler in transaction mode (PgBouncer's `pool_mode =
    transaction`), which hands each transaction, and each statement outside one, to whichever
    server connection is free. So no prepared statements (they live in one server session;
    PgBouncer 1.18 does not carry them over, and the next session answers "prepared statement
    does not exist" or "already exists"), and no `options` in the startup packet (PgBouncer
    refuses the connection: "unsupported startup parameter"). The time zone is set with `SET`
    instead: `TimeZone` is one of the parameters PgBouncer tracks per client and sets again on
    every server connection it lends that client. `statement_timeout` is not: in this mode it
    is the database role's (`ALTER ROLE … SET statement_timeout`), see docs/operations.md.
    """

    def __init__(self, url: URL, *, size: int, timeout: float, transaction_pooler: bool = False) -> None:
        session: dict[str, Any] = (
            {"prepare_threshold": None}
            if transaction_pooler
            else {"options": f"-c timezone={SESSION_TIMEZONE} -c statement_timeout={round(timeout * 1000)}"}
        )
        self._pool = AsyncConnectionPool(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            # Opened up front and kept: a pool that grows under load makes the requests that
            # wait for its new connections the slowest ones.
            min_size=size,
            max_size=size,
            timeout=timeout,
            # psycopg replaces a lost connection at once, then retries after 1, 2, 4, 8… s until
            # this much time has passed; then it gives up, and the next request that has to wait
            # starts a new series. With its default (5 minutes) the gap between attempts grew
            # with the outage: after 20 s without the database, requests failed for 8 s more
            # once it was back. Now an attempt is made about every second while requests wait.
            reconnect_timeout=RECONNECT_SECONDS,
            kwargs={
                "autocommit": True,
                **session,
                # A host that does not answer holds up an attempt this long (libpq: 2 s or more).
                "connect_timeout": max(2, math.ceil(timeout)),
            },
            configure=_configure_behind_pooler if transaction_pooler else _configure,
            open=False,
        )
        self._opened = False
        #: Connections lent out now. Counted here: psycopg's own count (`pool_size` less
        #: `pool_available`) includes the connections it is still opening.
        self._lent = 0
        self._checking: asyncio.Task[None] | None = None
        #: The `lock_timeout` of a write's wait for its user's change number, set with `SET LOCAL`
        #: (which a transaction pooler keeps: the transaction is one server connection's).
        self.lock_timeout_ms = round(min(USER_LOCK_SECONDS, timeout / 2) * 1000)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for the block, back in the pool after it (a transaction left open by
        a failure is rolled back by the pool).

        :raises StorageUnavailable: no connection could be had in time.
        """
        if not self._opened:
            await self._pool.open()
            self._opened = True
        try:
            async with self._pool.connection() as connection:
                self._lent += 1
                try:
                    yield connection
                except BaseException as error:
                    if not isinstance(error, Exception):
                        _abandon(connection)
                    raise
                finally:
                    self._lent -= 1
                    if connection.broken:
                        self._check_idle_connections()
        except UNREACHABLE as error:
            raise StorageUnavailable("the database cannot be reached") from error
        except psycopg.errors.UndefinedTable as error:
            raise storage_unavailable(error) from error

    def usage(self) -> PoolUsage:
        """How many connections are lent out, and how many requests wait for one. No round trip."""
        waiting = self._pool.get_stats().get("requests_waiting", 0) if self._opened else 0
        return PoolUsage(in_use=self._lent, waiting=waiting)

    def _check_idle_connections(self) -> None:
        """A connection broke, most likely because the database restarted, and the idle ones
        with it: test them now (a round trip each) rather than fail one request per connection
        (on a quiet server, the next `size` requests). Testing at every checkout would cost
        every request a round trip instead."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._pool.check())

    async def close(self) -> None:
        await self._pool.close()


def _abandon(connection: psycopg.AsyncConnection[Any]) -> None:
    """Close a connection whose block was cancelled (the client went away, the server shuts
    down) in the middle of a conversation with the server: its pipeline's results, its
    transaction and psycopg's record of prepared statements may no longer match the server's,
    and a later request must not inherit that (a stale result, or a "prepared statement does
    not exist"). Closed at once, without a round trip (nothing is awaited while cancelled): the
    server rolls back what was open, and the pool replaces a connection returned closed."""
    connection.pgconn.finish()


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    set_json_loads(orjson.loads, connection)


async def _configure_behind_pooler(connection: psycopg.AsyncConnection[Any]) -> None:
    await _configure(connection)
    await connection.execute(_SET_TIME_ZONE)


_SET_TIME_ZONE = f"SET TIME ZONE '{SESSION_TIMEZONE}'"


class PostgresUnitOfWork(SqlRepositories):
    """One transaction on a pooled connection, its statements pipelined; rolled back unless
    committed. With `read_only`, no transaction at all (see `SqlAlchemyUnitOfWork`)."""

    def __init__(self, pool: PostgresPool, *, read_only: bool = False) -> None:
        self._pool = pool
        self._read_only = read_only
        self._stack: contextlib.AsyncExitStack | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._pipeline: psycopg.AsyncPipeline | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        try:
            connection = await stack.enter_async_context(self._pool.connection())
            pipeline = None
            if not self._read_only:
                pipeline = await stack.enter_async_context(connection.pipeline())
                await connection.execute("BEGIN")  # sent with the first statement that needs an answer
        except BaseException:
            await stack.aclose()
            raise
        self._stack, self._connection, self._pipeline = stack, connection, pipeline
        self._committed = False
        self._executor = executor = PsycopgExecutor(connection, pipeline)
        self._changes = ChangeNumbers(executor, taking=not self._read_only, lock_timeout_ms=self._pool.lock_timeout_ms)
        self._open_repositories(executor, self._changes)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, stack = self._connection, self._stack
        self._connection = self._stack = self._pipeline = None
        assert connection is not None and stack is not None
        if exc is not None and not isinstance(exc, Exception):
            # Cancelled midway: the pool gets the connection closed (and replaces it); leaving
            # the pipeline of a closed connection fails, and must not turn the cancellation
            # into anything else.
            _abandon(connection)
            with contextlib.suppress(Exception):
                await stack.aclose()
            return
        try:
            # Not `connection.info.transaction_status`: in pipeline mode it reads IDLE once a
            # result has been fetched, inside the open transaction, which the pool would then
            # hand on to the next unit of work with this one's writes in it.
            with contextlib.suppress(psycopg.Error):
                if not self._read_only and not self._committed:
                    await connection.execute("ROLLBACK")
            with contextlib.suppress(psycopg.Error):
                await stack.aclose()  # leaves the pipeline (sending what is pending), returns the connection
        finally:
            if isinstance(exc, psycopg.IntegrityError):
                raise Conflict("the change clashes with a concurrent one; try again") from exc
            if isinstance(exc, psycopg.errors.LockNotAvailable):  # an OperationalError, so first
                raise UserBusy(
                    f"This write waited over {self._pool.lock_timeout_ms} ms for the same user's earlier writes, "
                    "which run one after the other; nothing of it was applied. Retry shortly."
                ) from exc
            if isinstance(exc, (*UNREACHABLE, psycopg.errors.UndefinedTable)):
                raise storage_unavailable(exc) from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside `async with`"
        assert not self._read_only, "commit() in a read-only unit of work"
        assert self._pipeline is not None
        committing = await self._connection.execute("COMMIT")
        try:
            # psycopg may read the answers of a pipeline while more statements are queued: an
            # announcement that failed can raise at the next one as well as at the sync.
            for user_id in self._changes.changed:
                await self._executor.run(_ANNOUNCE, {"user_id": user_id})
            await self.webhooks.ring()  # the delivery loops, when events were written (same pipeline)
            await self._pipeline.sync()  # durable once this returns; a broken rule raises here
        except psycopg.Error as error:
            # The commit's own answer tells whether the data is stored: if it is, only the
            # announcement failed, which is no failure of the command.
            if committing.statusmessage != "COMMIT":
                raise
            log.warning("a committed change was not announced (%s); event streams catch up", error)
        self._committed = True
