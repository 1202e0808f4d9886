"""SQLite: the writers of one process take turns by user. One user with many writes queued makes
another user's write wait for one of them, not for all of them; a write queued behind the same
user's earlier ones is refused (`UserBusy`, 429) after `SQLITE_OWN_WRITES_SECONDS`, as on
PostgreSQL, never left to queue into a 503."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.domain.conftest import FixedClock
from todo_adapters.sqlalchemy.engine import (
    SQLITE_OWN_WRITES_SECONDS,
    OwnWritesAhead,
    SqliteWriters,
    create_engine,
    sqlite_writers,
)
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_api.cli import migrate
from todo_core.commands import run
from todo_core.errors import UserBusy
from todo_core.task import TaskFields
from todo_core.use_cases.tasks import create_task

CLOCK = FixedClock()
#: Long enough for every waiter started to have queued.
SETTLE = 0.2
TIMEOUT = 30


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    path = tmp_path / "todo.db"
    await asyncio.to_thread(migrate, f"sqlite+aiosqlite:///{path}")  # it runs an event loop of its own
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield engine
    await engine.dispose()


async def _in_order(
    writers: SqliteWriters, queued: list[str | None], done: list[str | None]
) -> list[asyncio.Task[None]]:
    """Queue one writer per entry of `queued` (its user), in that order; each notes its user in
    `done` when its turn comes, and lets go."""

    async def write(user: str | None) -> None:
        await writers.acquire(TIMEOUT, user)
        done.append(user)
        writers.release()

    waiting = []
    for user in queued:
        waiting.append(asyncio.create_task(write(user)))
        await asyncio.sleep(0)  # queued in this order
    await asyncio.sleep(SETTLE)
    return waiting


async def test_turns_go_round_the_users_that_wait(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "todo.db"))
    await writers.acquire(TIMEOUT, "greedy")
    done: list[str | None] = []
    waiting = await _in_order(writers, ["greedy"] * 4 + ["other", None, "third", "other"], done)
    assert done == []
    writers.release()
    await asyncio.wait_for(asyncio.gather(*waiting), TIMEOUT)
    # One turn each, in the order the users first queued, then again.
    assert done == ["greedy", "other", None, "third", "greedy", "other", "greedy", "greedy"]


async def test_a_write_behind_its_users_own_gives_up_and_no_one_elses_does(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "todo.db"))
    own = 0.3
    await writers.acquire(TIMEOUT, "greedy", own_seconds=own)
    behind_own = asyncio.create_task(writers.acquire(TIMEOUT, "greedy", own_seconds=own))
    other = asyncio.create_task(writers.acquire(TIMEOUT, "other", own_seconds=own))
    began = time.monotonic()
    with pytest.raises(OwnWritesAhead):
        await asyncio.wait_for(behind_own, TIMEOUT)
    assert own <= time.monotonic() - began < own + 1
    await asyncio.sleep(own)
    assert not other.done()  # it waits for another user's write: as long as the database is busy
    writers.release()
    await asyncio.wait_for(other, TIMEOUT)
    writers.release()


async def test_a_writer_cancelled_as_its_turn_comes_passes_the_turn_on(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "todo.db"))
    await writers.acquire(TIMEOUT, "first")
    handed = asyncio.create_task(writers.acquire(TIMEOUT, "second"))
    after = asyncio.create_task(writers.acquire(TIMEOUT, "third"))
    await asyncio.sleep(SETTLE)
    writers.release()  # the turn is handed to `second`, which is cancelled before it runs again
    handed.cancel()
    await asyncio.wait_for(after, TIMEOUT)
    writers.release()


async def test_a_unit_of_work_waits_for_its_turn_as_its_users_writer(engine: AsyncEngine) -> None:
    """The unit of work learns whose write it is when it first takes a change number, and
    waits for its turn then: another user's create overtakes the greedy user's queued ones."""
    writers = sqlite_writers(engine)
    assert writers is not None
    await writers.acquire(TIMEOUT, "greedy")
    finished: list[str] = []

    async def create(user: str) -> None:
        await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, user, TaskFields(f"{user}'s"))
        finished.append(user)

    creates = []
    for user in ["greedy"] * 4 + ["other"]:
        creates.append(asyncio.create_task(create(user)))
        await asyncio.sleep(0.02)
    await asyncio.sleep(SETTLE)
    writers.release()
    await asyncio.wait_for(asyncio.gather(*creates), TIMEOUT)
    assert finished.index("other") <= 1, finished


async def test_a_create_queued_behind_its_users_writes_is_refused_as_user_busy(engine: AsyncEngine) -> None:
    writers = sqlite_writers(engine)
    assert writers is not None
    await writers.acquire(TIMEOUT, "greedy")
    try:
        began = time.monotonic()
        with pytest.raises(UserBusy):
            await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, "greedy", TaskFields("one too many"))
        assert SQLITE_OWN_WRITES_SECONDS <= time.monotonic() - began < SQLITE_OWN_WRITES_SECONDS + 2
    finally:
        writers.release()
    # The turn is free again: nothing of the refused write holds it.
    made = await asyncio.wait_for(
        run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, "greedy", TaskFields("in time")), TIMEOUT
    )
    assert made.fields.title == "in time"


async def test_a_writer_cancelled_just_before_a_release_goes_past_it_leaves_the_turns_usable(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "todo.db"))
    await writers.acquire(TIMEOUT, "first")
    cancelled = asyncio.create_task(writers.acquire(TIMEOUT, "second"))
    await asyncio.sleep(SETTLE)
    cancelled.cancel()
    writers.release()  # before the cancelled writer runs again: the release skips its turn
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(writers.acquire(TIMEOUT, "third"), SETTLE)
    writers.release()


async def test_a_worker_whose_writers_keep_coming_lets_another_workers_writer_in(tmp_path: Path) -> None:
    """Two worker processes on one file (two `SqliteWriters`, each with its own lock file
    descriptor, as two processes have). The busy one's next writer would take the file's lock
    back the instant its last one let go, while the other worker sleeps between tries; it lets
    the worker that waits go first."""
    busy, waiting = SqliteWriters(str(tmp_path / "todo.db")), SqliteWriters(str(tmp_path / "todo.db"))
    await busy.acquire(TIMEOUT, "greedy")
    done: list[str | None] = []
    queued = await _in_order(busy, ["greedy"] * 3, done)
    other = asyncio.create_task(waiting.acquire(TIMEOUT, "other"))
    await asyncio.sleep(SETTLE)
    busy.release()
    await asyncio.wait_for(other, TIMEOUT)
    assert done == [], "the busy worker took the file's lock back while another worker waited"
    waiting.release()
    await asyncio.wait_for(asyncio.gather(*queued), TIMEOUT)
    assert done == ["greedy"] * 3
