"""The SQLite driver (`todo_adapters.sqlalchemy.sqlite_driver`): statements run on the event
loop's thread, and what would make the loop wait does not: a write lock held by another
program, a checkpoint, a statement of many rows."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from todo_adapters.sqlalchemy.engine import create_engine, for_reads
from todo_adapters.sqlalchemy.sqlite_driver import CHECKPOINT_ROWS, in_thread

TIMEOUT = 10  # a wait that never ends fails the test instead of hanging the suite


async def _thread_of_statements(connection: AsyncConnection) -> int:
    driver = (await connection.get_raw_connection()).driver_connection
    driver._conn.create_function("thread_ident", 0, threading.get_ident)
    return int((await connection.execute(text("SELECT thread_ident()"))).scalar_one())


async def test_statements_run_on_the_event_loops_thread_and_many_rows_beside_it(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as connection:
        assert await _thread_of_statements(connection) == threading.get_ident()
        async with in_thread(connection):
            assert await _thread_of_statements(connection) != threading.get_ident()
        assert await _thread_of_statements(connection) == threading.get_ident()


async def test_a_write_waits_for_another_programs_lock_without_holding_up_the_event_loop(
    sqlite_url: str, sqlite_engine: AsyncEngine
) -> None:
    """The write's BEGIN IMMEDIATE meets the lock on the loop with no wait, then waits for it on
    the connection's thread: the loop keeps turning, and the write goes through once the lock is
    let go."""
    other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None, timeout=TIMEOUT)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with sqlite_engine.begin() as connection:
                await connection.execute(text("UPDATE user_changes SET seq = seq WHERE user_id = 'nobody'"))

        writing = asyncio.ensure_future(write())
        ticks, held_until = 0, time.monotonic() + 0.5
        while time.monotonic() < held_until:
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done(), "the write did not wait for the other program's lock"
        assert ticks >= 20, f"the event loop turned {ticks} times in 0.5 s while the write waited"
        other.execute("COMMIT")
    finally:
        other.close()
    await asyncio.wait_for(writing, TIMEOUT)


@pytest.fixture
async def scratch_engine(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Path]]:
    database = tmp_path / "scratch.db"
    engine = create_engine(f"sqlite:///{database}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield engine, database
    await engine.dispose()


async def test_the_write_ahead_log_is_checkpointed_as_writes_go_on(scratch_engine: tuple[AsyncEngine, Path]) -> None:
    """SQLite's own checkpoints are off (they would run inside a commit, on the loop): the
    driver's keep the log from growing with every write. 20 x CHECKPOINT_ROWS rows of 1 KB:
    ~40 MB of log without checkpoints."""
    engine, database = scratch_engine
    rows_per_commit = CHECKPOINT_ROWS // 4
    for _ in range(80):
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO notes (body) VALUES (:body)"), [{"body": "x" * 1000}] * rows_per_commit
            )
    log = Path(f"{database}-wal").stat().st_size
    assert log < 8_000_000, f"the write-ahead log grew to {log:,} bytes"


async def test_a_read_goes_on_while_another_program_holds_the_write_lock(
    sqlite_url: str, sqlite_engine: AsyncEngine
) -> None:
    """Readers (`for_reads`) open no write transaction: with WAL they read beside any writer."""
    other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None, timeout=TIMEOUT)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with asyncio.timeout(2), for_reads(sqlite_engine).connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM user_changes"))).scalar_one() >= 0
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_long_run_of_statements_lets_the_event_loop_turn(sqlite_engine: AsyncEngine) -> None:
    """Statements run on the loop's thread without suspending their caller: a unit of work that
    runs thousands of them (a batch) must still let other requests in every few milliseconds."""
    turns: list[float] = []
    running = True

    async def other_requests() -> None:
        while running:
            turns.append(time.monotonic())
            await asyncio.sleep(0)

    others = asyncio.ensure_future(other_requests())
    await asyncio.sleep(0)
    async with sqlite_engine.connect() as connection:
        began = time.monotonic()
        while time.monotonic() - began < 0.3:
            await connection.execute(text("SELECT 1"))
        ended = time.monotonic()
    running = False
    await asyncio.wait_for(others, TIMEOUT)
    during = [began, *(t for t in turns if began <= t <= ended), ended]
    longest = max(later - earlier for earlier, later in itertools.pairwise(during))
    assert longest < 0.05, f"the statements held the event loop for {longest * 1000:.0f} ms at a stretch"
