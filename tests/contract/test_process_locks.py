"""The locks that keep work to one process at a time, across workers and replicas.

The export lock (one running export per user): taken and let go on PostgreSQL (an advisory lock
on a connection of the process's own) and on SQLite (a lock file), also when its holder is
cancelled while taking it, when its connection breaks, and when a holder deletes its file just
as another process opens it. The purge lock (one purge at a time): the same on both, and in a
SQLite database in memory."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import libpq_url
from tests.ports import free_port
from todo_adapters.sqlalchemy import export_locks
from todo_adapters.sqlalchemy.export_locks import APPLICATION_NAME, PostgresExportLocks, SqliteExportLocks
from todo_adapters.sqlalchemy.purge_lock import PostgresPurgeLock, SqlitePurgeLock
from todo_core.errors import StorageUnavailable


@pytest.fixture
async def two_processes(postgres_url: str) -> AsyncIterator[tuple[PostgresExportLocks, PostgresExportLocks]]:
    """The export locks of two server processes on one database."""
    first = PostgresExportLocks(make_url(postgres_url), timeout=5)
    second = PostgresExportLocks(make_url(postgres_url), timeout=5)
    yield first, second
    await first.close()
    await second.close()


async def held_elsewhere(locks: PostgresExportLocks, user: str) -> bool:
    async with locks.holding(user) as held:
        return not held


@pytest.mark.postgres
async def test_one_export_per_user_across_processes(
    two_processes: tuple[PostgresExportLocks, PostgresExportLocks],
) -> None:
    first, second = two_processes
    user, other = f"user-{uuid.uuid4().hex}", f"user-{uuid.uuid4().hex}"
    async with first.holding(user) as held:
        assert held
        assert await held_elsewhere(second, user)
        assert not await held_elsewhere(second, other)  # another user's export goes ahead
    assert not await held_elsewhere(second, user)  # let go when the export ended


@pytest.mark.postgres
async def test_a_holder_cancelled_while_taking_the_lock_lets_it_go(
    two_processes: tuple[PostgresExportLocks, PostgresExportLocks],
) -> None:
    """A client that goes away while its export's lock is being taken: the try runs to its end
    (a statement cut half-way would leave the shared connection out of step), then lets go."""
    first, second = two_processes
    user = f"user-{uuid.uuid4().hex}"

    async def export() -> None:
        async with first.holding(user):
            await asyncio.sleep(60)

    exporting = asyncio.ensure_future(export())
    await asyncio.sleep(0)  # inside the shielded try: connecting, then asking for the lock
    exporting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await exporting
    for _ in range(100):  # the try ends, then its lock goes
        if not await held_elsewhere(second, user):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the cancelled export's lock was never let go")
    async with first.holding(user) as held:
        assert held  # the shared connection is in step


@pytest.mark.postgres
async def test_a_broken_connection_takes_its_locks_with_it_and_is_replaced(
    two_processes: tuple[PostgresExportLocks, PostgresExportLocks],
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = two_processes
    user = f"user-{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING, logger=export_locks.__name__):
        async with first.holding(user) as held:
            assert held
            assert first._connection is not None
            pid = first._connection.info.backend_pid
            with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:
                row = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND application_name = %s",
                    [pid, APPLICATION_NAME],
                ).fetchone()
                assert row == (True,)
            for _ in range(100):  # the server lets go of the session's locks as it ends it
                if not await held_elsewhere(second, user):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the broken session's lock was still held")
    # The end of the export found the connection broken: no error, one warning, and the next
    # export gets a new connection.
    assert [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING] == [
        "the export locks' connection broke: closing it (its locks go with it)"
    ]
    async with first.holding(user) as held:
        assert held
        assert await held_elsewhere(second, user)


@pytest.mark.postgres
async def test_an_unreachable_database_is_storage_unavailable() -> None:
    url = make_url(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere")
    locks = PostgresExportLocks(url, timeout=1)
    with pytest.raises(StorageUnavailable):
        async with locks.holding("someone"):
            pytest.fail("held without a database")
    await locks.close()


async def test_sqlite_one_export_per_user_and_the_file_goes_with_it(tmp_path: Path) -> None:
    database = tmp_path / "todo.db"
    first, second = (SqliteExportLocks(make_url(f"sqlite+aiosqlite:///{database}")) for _ in range(2))
    async with first.holding("alice") as held:
        assert held
        async with second.holding("alice") as also:
            assert not also
        async with second.holding("bob") as other:
            assert other
        assert len(list(tmp_path.glob("todo.db.export-*"))) == 1
    assert not list(tmp_path.glob("todo.db.export-*"))
    async with second.holding("alice") as held:
        assert held


def test_sqlite_a_lock_file_deleted_just_as_it_was_opened_is_opened_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process opened the path, then its holder deleted it (ending its export) before
    the lock was taken: the lock then is on a file no one else can find, and a third process
    would take the path's new file as well. The lock must be on the file the path names."""
    path = str(tmp_path / "todo.db.export-0123")
    real_flock = fcntl.flock
    deleted = []

    def flock_after_the_holder_deleted_the_file(file: int, operation: int) -> None:
        if not deleted:
            os.unlink(path)  # what the holder does as its export ends
            deleted.append(path)
        real_flock(file, operation)

    monkeypatch.setattr(export_locks.fcntl, "flock", flock_after_the_holder_deleted_the_file)
    file = export_locks._locked(path)

    assert file is not None and deleted
    try:
        assert os.fstat(file).st_ino == os.stat(path).st_ino  # locked: the file the path names
    finally:
        os.close(file)


@pytest.mark.postgres
async def test_one_purge_at_a_time_across_processes(postgres_url: str) -> None:
    first, second = (PostgresPurgeLock(make_url(postgres_url), timeout=5) for _ in range(2))
    async with first.exclusively() as held:
        assert held
        async with second.exclusively() as also:
            assert not also
    async with second.exclusively() as held:
        assert held  # the lock went with the first one's transaction


@pytest.mark.postgres
async def test_the_purge_lock_of_an_unreachable_database_is_storage_unavailable() -> None:
    locks = PostgresPurgeLock(make_url(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"), timeout=1)
    with pytest.raises(StorageUnavailable):
        async with locks.exclusively():
            pytest.fail("held without a database")


@pytest.mark.parametrize("database", ["file", "memory"])
async def test_sqlite_one_purge_at_a_time(tmp_path: Path, database: str) -> None:
    if database == "file":
        url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}")
        first, second = SqlitePurgeLock(url), SqlitePurgeLock(url)  # two processes
    else:
        first = second = SqlitePurgeLock(make_url("sqlite+aiosqlite:///:memory:"))  # one process's own
    async with first.exclusively() as held:
        assert held
        async with second.exclusively() as also:
            assert not also
    async with second.exclusively() as held:
        assert held


async def test_sqlite_a_lock_file_that_cannot_be_opened_is_storage_unavailable(tmp_path: Path) -> None:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'todo.db'}")
    with pytest.raises(StorageUnavailable):
        async with SqlitePurgeLock(url).exclusively():
            pytest.fail("held without its file")
    with pytest.raises(StorageUnavailable):
        async with SqliteExportLocks(url).holding("alice"):
            pytest.fail("held without its file")
