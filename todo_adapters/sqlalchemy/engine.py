"""Engines for the two databases we run on, from one URL."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
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
    writers ahead of them. Here a writer waits instead on an asyncio lock (the writers of
    this process) and then for an advisory lock on a file beside the database (the other
    worker processes), which it polls for (a turn that comes free is taken within ~10 ms). `BEGIN
    IMMEDIATE` still takes SQLite's own lock, against any other program writing the file.
    """

    def __init__(self, database: str) -> None:
        self._turn = asyncio.Lock()
        self._path = f"{database}-writers"
        self._file: int | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def acquire(self, timeout: float) -> None:
        """:raises TimeoutError: no turn came within `timeout` seconds.
        :raises OSError: the lock file cannot be opened (the database's folder is not writable).
        """
        async with asyncio.timeout(timeout):
            await self._turn.acquire()
            try:
                if self._file is None:
                    self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                # Another worker's lock is polled for, never waited for in a thread: a blocking
                # flock cannot be cancelled, so a wait that timed out would leave its thread (and
                # this process's turn) blocked until the other worker let go.
                pause = _FIRST_PAUSE
                while not _try_lock(self._file):
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _LONGEST_PAUSE)
            except BaseException:
                self._turn.release()
                raise
        self._idle.clear()

    def release(self) -> None:
        assert self._file is not None
        self._idle.set()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._turn.release()

    async def let_writer_finish(self, at_most: float) -> None:
        """Wait until this process's write transaction (if one is open) ends, for at most
        `at_most` seconds."""
        if not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most):  # not wait_for, which may swallow a cancellation (3.11)
                    await self._idle.wait()


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
#: longest it sleeps between tries: a turn that comes free is taken within ~10 ms.
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.01


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
