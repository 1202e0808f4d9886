"""Engines for the two databases we run on, from one URL."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from todo_adapters.sqlalchemy.sqlite_driver import inline_connector

POOL_TIMEOUT_SECONDS = 10
#: How long a SQLite write waits for the file's write lock (and for its turn in this process).
SQLITE_BUSY_SECONDS = 15
#: How long a SQLite write waits for its turn behind the same user's earlier writes before it is
#: refused (`UserBusy`, 429), as on PostgreSQL (`psycopg.USER_LOCK_SECONDS`).
SQLITE_OWN_WRITES_SECONDS = 1.0
#: Sessions in UTC whatever the server's or database's default: psycopg turns timestamps into
#: local time (a far-future instant can be past year 9999 in some zones), and PostgreSQL
#: renders them in JSON in the session's zone.
SESSION_TIMEZONE = "UTC"
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "sqlite": "sqlite+aiosqlite"}


def normalise_url(url: str | URL) -> URL:
    """The URL with the async driver we use: `postgresql://` becomes `postgresql+psycopg://`,
    `sqlite://` becomes `sqlite+aiosqlite://`.

    :raises ValueError: the URL names another database.
    """
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername, parsed.drivername)
    if driver not in _DRIVERS.values():
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use postgresql:// or sqlite://")
    return parsed.set(drivername=driver)


def create_engine(url: str | URL, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for PostgreSQL (psycopg 3) or a SQLite file (aiosqlite)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            parsed,
            echo=echo,
            async_creator=inline_connector(parsed.database or ":memory:", busy_seconds=SQLITE_BUSY_SECONDS),
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            # A connection comes back with no transaction open (a unit of work rolls back
            # what it did not commit when it closes): no ROLLBACK, one thread hop fewer.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        parsed,
        echo=echo,
        pool_size=pool_size,
        # No connections beyond the pool: under load, each would be opened and closed again
        # per request (a new PostgreSQL process each time). A request waits for a pooled one.
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        # No ping before each checkout: it is a round trip per request. A connection that died
        # (a database restart) fails its request with a 503 and leaves the pool.
        pool_recycle=1800,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        connect_args={"options": f"-c timezone={SESSION_TIMEZONE}"},
    )


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A process's pooled database connections at one instant: how many are lent out, and how
    many requests wait for one."""

    in_use: int
    waiting: int


def engine_pool_usage(engine: AsyncEngine) -> PoolUsage:
    """The usage of SQLAlchemy's pool (SQLite). That pool does not count the requests waiting for
    a connection: `waiting` is 0 (on SQLite, writers wait for their turn in `SqliteWriters`)."""
    pool = engine.sync_engine.pool
    return PoolUsage(in_use=pool.checkedout() if isinstance(pool, QueuePool) else 0, waiting=0)


class SqliteWriters:
    """The turns that write transactions on one SQLite file take.

    SQLite lets one writer in at a time, and one that finds the file locked sleeps and
    retries (sleeps growing up to 100 ms), so under load some wait far longer than the
    writers ahead of them. Here a writer waits instead for its turn among this process's
    writers and then for an advisory lock on a file beside the database (the other worker
    processes; see `_lock_file`). `BEGIN IMMEDIATE` still takes SQLite's own lock, against any
    other program writing the file.

    This process's turns go round the users that wait, one turn each, and to each user's
    writers in arrival order: a user with many writes queued makes another user's write wait
    for one of them, not for all of them. A write queued behind the same user's earlier ones
    waits at most `own_seconds` (`OwnWritesAhead`), as on PostgreSQL a write waits for the
    user's change number; a write whose user is not known (None) waits in a rotation of its own.
    """

    def __init__(self, database: str) -> None:
        self._path = f"{database}-writers"
        self._file: int | None = None
        self._wanted = -1
        #: Whether this process's writer was the last to hold the file's lock.
        self._had_last_turn = False
        self._busy = False
        #: The user whose writer holds the turn (None: not known, or no writer).
        self._holder: str | None = None
        #: Each waiting user's writers in arrival order; the users in the order their turns come.
        self._waiting: dict[str | None, collections.deque[asyncio.Future[None]]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    async def acquire(self, timeout: float, user: str | None = None, *, own_seconds: float | None = None) -> None:
        """:raises OwnWritesAhead: the user's earlier writes held or queued for the turn, and
            this one waited `own_seconds` behind them.
        :raises TimeoutError: no turn came within `timeout` seconds.
        :raises OSError: the lock file cannot be opened (the database's folder is not writable).
        """
        behind_own = (
            own_seconds is not None
            and user is not None
            and ((self._busy and self._holder == user) or user in self._waiting)
        )
        bound = min(timeout, own_seconds) if behind_own and own_seconds is not None else timeout
        try:
            async with asyncio.timeout(bound):
                await self._take_turn(user)
                try:
                    await self._lock_file()
                except BaseException:
                    self._pass_turn()
                    raise
        except TimeoutError as error:
            if bound < timeout:
                raise OwnWritesAhead(bound) from error
            raise
        self._idle.clear()

    def release(self) -> None:
        assert self._file is not None
        self._idle.set()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._had_last_turn = True
        self._pass_turn()

    async def _lock_file(self) -> None:
        """Take the file's lock, which the other worker processes' writers take too.

        Another worker's lock is polled for, never waited for in a thread: a blocking flock
        cannot be cancelled, so a wait that timed out would leave its thread (and this process's
        turn) blocked until the other worker let go. A poller sleeps between tries, whereas a
        process's next writer tries as soon as its last one lets go: it would win every time,
        and a worker whose writers keep coming would keep the others out. So a worker that polls
        says so (a shared lock on `<database>-writers-wanted`), and a worker that had the last
        turn lets a worker that wants it go first (for at most `_COURTESY_SECONDS`).
        """
        if self._file is None:
            self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._wanted = os.open(f"{self._path}-wanted", os.O_RDWR | os.O_CREAT, 0o600)
        if self._had_last_turn:
            self._had_last_turn = False
            began = time.monotonic()
            while _others_want(self._wanted) and time.monotonic() - began < _COURTESY_SECONDS:
                await asyncio.sleep(_FIRST_PAUSE)
        if _try_lock(self._file):
            return
        fcntl.flock(self._wanted, fcntl.LOCK_SH)
        try:
            pause = _FIRST_PAUSE
            while not _try_lock(self._file):
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
        finally:
            fcntl.flock(self._wanted, fcntl.LOCK_UN)

    async def _take_turn(self, user: str | None) -> None:
        if not self._busy:
            self._busy, self._holder = True, user
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user, collections.deque()).append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # handed the turn as it was cancelled: pass it on
                self._pass_turn()
            else:  # still queued, unless a release went past it (it skips cancelled turns)
                queue = self._waiting.get(user)
                if queue is not None and turn in queue:
                    queue.remove(turn)
                    if not queue:
                        del self._waiting[user]
            raise

    def _pass_turn(self) -> None:
        """Give the turn to the first writer of the next user that waits, or to nobody."""
        while self._waiting:
            user = next(iter(self._waiting))
            queue = self._waiting.pop(user)
            turn = queue.popleft()
            if queue:
                self._waiting[user] = queue  # last: every other user that waits goes first
            if not turn.done():
                self._holder = user
                turn.set_result(None)
                return
        self._busy, self._holder = False, None

    async def let_writer_finish(self, at_most: float) -> None:
        """Wait until this process's write transaction (if one is open) ends, for at most
        `at_most` seconds."""
        if not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):  # not wait_for, which may swallow a cancellation (3.11)
                    await self._idle.wait()


class OwnWritesAhead(TimeoutError):
    """A write waited for its turn behind the same user's earlier writes, and gave up."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"waited {seconds:g} s behind the same user's earlier writes")
        self.seconds = seconds


def sqlite_writers(engine: AsyncEngine) -> SqliteWriters | None:
    """The writers' turns of a SQLite file (one per engine, so per process); None otherwise."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    found = _WRITERS.get(engine.sync_engine)
    if found is None:
        found = _WRITERS[engine.sync_engine] = SqliteWriters(database)
    return found


#: How long a writer first sleeps when another worker process holds the file's lock, and the
#: longest it sleeps between tries: a turn that comes free is taken within ~2 ms.
_FIRST_PAUSE = 0.0005
_LONGEST_PAUSE = 0.002
#: The longest a worker that had the last turn waits for another that wants one to take it.
_COURTESY_SECONDS = 0.02


def _others_want(wanted: int) -> bool:
    """Whether another worker's writer polls for the file's lock (holds `wanted` shared)."""
    if not _try_lock(wanted):
        return True
    fcntl.flock(wanted, fcntl.LOCK_UN)
    return False


def _try_lock(file: int) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_WRITERS: weakref.WeakKeyDictionary[Engine, SqliteWriters] = weakref.WeakKeyDictionary()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, say when a transaction begins (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        # SQLite's own lower() folds ASCII only; search must fold case as PostgreSQL does.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # "database is locked" without waiting for the busy timeout. Reads run in autocommit
        # mode and take no lock: with WAL, they neither wait for a writer nor hold one up.
        options = connection.get_execution_options()
        if not options.get(_READS) and options.get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


#: The execution option that marks a SQLite engine's connections as readers (no BEGIN IMMEDIATE).
_READS = "todo_reads"


def for_reads(engine: AsyncEngine) -> AsyncEngine:
    """The engine, for reads outside any transaction: each statement reads its own snapshot
    and, with WAL, neither waits for a writer nor holds one up. On SQLite the connections are
    marked rather than switched to AUTOCOMMIT: a sqlite3 connection here is in autocommit mode
    already (no BEGIN but ours), and switching its mode at each checkout and return is a call on
    the connection's thread each time (SQLAlchemy's aiosqlite dialect sends it there)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_READS: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value
