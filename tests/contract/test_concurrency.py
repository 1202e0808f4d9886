"""Concurrent commands on every adapter: two real units of work (on SQL, two connections), interleaved.

The first command stops at a gate, right after its first read or at its commit with every
change staged, while a rival command runs. One guard keeps all of these rules: a writer takes
its user's turn (the `user_changes` row on PostgreSQL, SQLite's write lock, a lock in memory)
before its first read and keeps it to its end. So a rival held back cannot finish within
SETTLE; the gate then opens, the first command commits, and the rival reads what it committed.
Take the turn at the first write instead of the first read, and each test below but the
deletion and category-move ones sees a lost change, a cycle, a task too deep, a dangling
category; the unique name is kept by the database's unique index (memory: a check at commit).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import UnitOfWorkFactory, stored_task
from todo_adapters.clock import SystemClock
from todo_adapters.sqlalchemy.engine import SqliteWriters, create_engine
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_adapters.sqlalchemy.views import SqliteTaskViews
from todo_core.category import Category, CategoryFields
from todo_core.commands import run
from todo_core.errors import Conflict, NotFound, PreconditionFailed, StorageUnavailable, ValidationFailed
from todo_core.ports import UnitOfWork
from todo_core.query import TaskQuery
from todo_core.task import Priority, Task, TaskFields
from todo_core.use_cases.categories import create_category, delete_category, get_category, update_category
from todo_core.use_cases.tasks import complete_task, create_task, delete_task, move_task, patch_task

SETTLE = 0.2  # seconds a rival may take to finish when nothing holds it back (they take ~10 ms)
TIMEOUT = 10  # a guard that deadlocks fails its test rather than hang the suite
POLL = 0.005  # seconds between two looks at PostgreSQL's backends

#: On PostgreSQL: whether another backend of the test's database waits for a lock. Then the
#: rival is known to be held back, and the gate opens at once; and one that is not held back
#: is waited for until it finishes (at most TIMEOUT), not only SETTLE.
_rival_waits: Callable[[], Coroutine[Any, Any, bool]] | None = None

_WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


@pytest.fixture(autouse=True)
def _watch_postgres_locks(request: pytest.FixtureRequest) -> Iterator[None]:
    global _rival_waits
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("backend") != "postgres":
        yield
        return
    url = make_url(request.getfixturevalue("postgres_url")).set(drivername="postgresql")
    # A plain connection: a look takes a fraction of a millisecond, the rival runs between looks.
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as db:

        async def waits() -> bool:
            row = db.execute(_WAITING_FOR_A_LOCK).fetchone()
            return row is not None and row[0] > 0

        _rival_waits = waits
        try:
            yield
        finally:
            _rival_waits = None


CLOCK = SystemClock()


class Gate:
    """Where the first command waits until the rival has run (or is held back)."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)

    def hold(self, uow: UnitOfWork) -> UnitOfWork:
        """The unit of work, stopping at this gate after its first `get` (of a task or a category)."""
        return _Held(uow, self, at_commit=False)

    def hold_commit(self, uow: UnitOfWork) -> UnitOfWork:
        """The unit of work, stopping at this gate when it commits, with every change staged."""
        return _Held(uow, self, at_commit=True)


class _Held:
    def __init__(self, uow: UnitOfWork, gate: Gate, *, at_commit: bool) -> None:
        self._uow = uow
        self._gate = gate
        self._at_commit = at_commit

    async def __aenter__(self) -> _Held:
        await self._uow.__aenter__()
        if not self._at_commit:
            self.tasks = _StopsAfterRead(self._uow.tasks, self._gate)
            self.categories = _StopsAfterRead(self._uow.categories, self._gate)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)  # every other repository, as the unit of work hands it out

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._uow.__aexit__(*exc_info)

    async def commit(self) -> None:
        if self._at_commit:
            await self._gate.pass_through()
        await self._uow.commit()


class _StopsAfterRead:
    def __init__(self, repository: Any, gate: Gate) -> None:
        self._repository = repository
        self._gate = gate

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        found = await self._repository.get(*args, **kwargs)
        await self._gate.pass_through()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repository, name)


async def interleave(
    gate: Gate, first: Coroutine[Any, Any, Any], rival: Callable[[], Coroutine[Any, Any, Any]]
) -> tuple[Any, Any]:
    """Run `first` (a command on a unit of work held at `gate`) to the gate, then `rival` until
    it finishes or SETTLE passes, then both to the end. Returns each one's result or exception."""
    held = asyncio.ensure_future(first)
    reached = asyncio.ensure_future(gate.reached.wait())
    await asyncio.wait({held, reached}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    assert gate.reached.is_set(), f"the first command ended before it read: {held}"
    racing = asyncio.ensure_future(rival())
    await _held_back_or_done(racing)
    gate.opened.set()
    first_result, rival_result = await asyncio.wait_for(asyncio.gather(held, racing, return_exceptions=True), TIMEOUT)
    return first_result, rival_result


async def _held_back_or_done(racing: asyncio.Future[Any]) -> None:
    """Return once the rival has finished, or is held back: on PostgreSQL, as soon as its
    backend waits for a lock (bounded by TIMEOUT); elsewhere, after SETTLE."""
    if _rival_waits is None:
        await asyncio.wait({racing}, timeout=SETTLE)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not racing.done() and loop.time() < deadline and not await _rival_waits():
        await asyncio.wait({racing}, timeout=POLL)


def succeeded(results: tuple[Any, Any]) -> tuple[Any, Any]:
    """Both commands' results, or the first exception either raised."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def new_task(uow_factory: UnitOfWorkFactory, user: str, **fields: Any) -> Task:
    return await run(uow_factory(), create_task, CLOCK, user, TaskFields(**{"title": "Task", **fields}))


async def new_category(uow_factory: UnitOfWorkFactory, user: str, name: str = "Work") -> Category:
    return await run(uow_factory(), create_category, CLOCK, user, CategoryFields(name))


# Tasks


async def test_two_changes_of_one_task_both_survive(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = await new_task(uow_factory, user)
    gate = Gate()
    first, rival = succeeded(
        await interleave(
            gate,
            run(gate.hold(uow_factory()), patch_task, CLOCK, user, task.id, {"title": "Renamed"}),
            lambda: run(uow_factory(), patch_task, CLOCK, user, task.id, {"priority": Priority.HIGH}),
        )
    )
    assert (first.version, rival.version) == (2, 3)
    stored = await stored_task(uow_factory, user, task.id)
    assert (stored.fields.title, stored.fields.priority, stored.version) == ("Renamed", Priority.HIGH, 3)


async def test_two_toggles_of_one_task_cancel_out(uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]) -> None:
    user = new_user()
    task = await new_task(uow_factory, user)
    gate = Gate()
    results = await interleave(
        gate,
        run(gate.hold(uow_factory()), complete_task, CLOCK, user, task.id),
        lambda: run(uow_factory(), complete_task, CLOCK, user, task.id),
    )
    assert [result.fields.completed for result in succeeded(results)] == [True, False]
    stored = await stored_task(uow_factory, user, task.id)
    assert (stored.fields.completed, stored.version) == (False, 3)


async def test_of_two_changes_made_on_the_same_if_match_only_the_first_succeeds(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = await new_task(uow_factory, user)
    gate = Gate()
    first, rival = await interleave(
        gate,
        run(gate.hold(uow_factory()), patch_task, CLOCK, user, task.id, {"title": "First"}, if_match=1),
        lambda: run(uow_factory(), patch_task, CLOCK, user, task.id, {"title": "Second"}, if_match=1),
    )
    assert not isinstance(first, BaseException) and first.version == 2
    assert isinstance(rival, PreconditionFailed) and rival.current_version == 2
    stored = await stored_task(uow_factory, user, task.id)
    assert (stored.fields.title, stored.version) == ("First", 2)


async def test_a_task_deleted_while_it_is_changed_stays_deleted(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = await new_task(uow_factory, user)
    gate = Gate()
    changed, _ = succeeded(
        await interleave(
            gate,
            run(gate.hold(uow_factory()), patch_task, CLOCK, user, task.id, {"title": "Renamed"}),
            lambda: run(uow_factory(), delete_task, CLOCK, user, task.id),
        )
    )
    assert changed.version == 2
    with pytest.raises(NotFound):
        await stored_task(uow_factory, user, task.id)


async def test_a_task_changed_while_its_category_is_deleted_keeps_the_change_and_loses_the_category(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = await new_category(uow_factory, user)
    task = await new_task(uow_factory, user, category_id=category.id)
    gate = Gate()
    succeeded(
        await interleave(
            gate,
            run(gate.hold(uow_factory()), patch_task, CLOCK, user, task.id, {"title": "Renamed"}),
            lambda: run(uow_factory(), delete_category, CLOCK, user, category.id),
        )
    )
    stored = await stored_task(uow_factory, user, task.id)
    assert (stored.fields.title, stored.fields.category_id, stored.version) == ("Renamed", None, 3)


async def test_a_task_moved_to_another_category_while_its_old_one_is_deleted_keeps_the_new_one(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    old, new = await new_category(uow_factory, user, "Old"), await new_category(uow_factory, user, "New")
    task = await new_task(uow_factory, user, category_id=old.id)
    gate = Gate()
    succeeded(
        await interleave(
            gate,
            run(gate.hold(uow_factory()), patch_task, CLOCK, user, task.id, {"category_id": new.id}),
            lambda: run(uow_factory(), delete_category, CLOCK, user, old.id),
        )
    )
    stored = await stored_task(uow_factory, user, task.id)
    assert (stored.fields.category_id, stored.version) == (new.id, 2)


async def test_a_task_given_a_category_while_it_is_deleted_loses_it(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = await new_category(uow_factory, user)
    gate = Gate()
    # The gate is after the category is read: the deletion must wait for the task.
    created, _ = succeeded(
        await interleave(
            gate,
            run(gate.hold(uow_factory()), create_task, CLOCK, user, TaskFields(title="Task", category_id=category.id)),
            lambda: run(uow_factory(), delete_category, CLOCK, user, category.id),
        )
    )
    stored = await stored_task(uow_factory, user, created.id)
    assert (stored.fields.category_id, stored.version) == (None, 2)


# Subtasks: each move checks the tree as the other left it


async def test_two_moves_that_together_would_make_a_cycle_one_is_refused(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    a, b = await new_task(uow_factory, user, title="A"), await new_task(uow_factory, user, title="B")
    gate = Gate()
    # The first has checked that B is not below A and staged A under B; the rival, B under A,
    # must check the tree with that move in it.
    first, rival = await interleave(
        gate,
        run(gate.hold_commit(uow_factory()), move_task, CLOCK, user, a.id, parent_id=b.id),
        lambda: run(uow_factory(), move_task, CLOCK, user, b.id, parent_id=a.id),
    )
    assert not isinstance(first, BaseException) and first.fields.parent_id == b.id
    assert isinstance(rival, ValidationFailed), rival
    stored = [(await stored_task(uow_factory, user, task.id)).fields.parent_id for task in (a, b)]
    assert stored == [b.id, None]


async def test_a_move_and_a_new_step_that_together_would_nest_too_deep_one_is_refused(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    chain: list[Task] = []
    for title in ("P1", "P2", "P3"):
        chain.append(await new_task(uow_factory, user, title=title, parent_id=chain[-1].id if chain else None))
    q1 = await new_task(uow_factory, user, title="Q1")
    q2 = await new_task(uow_factory, user, title="Q2", parent_id=q1.id)
    gate = Gate()
    # Q1 under P3 puts Q2 at the fifth level: a step of Q2 would be the sixth.
    first, rival = await interleave(
        gate,
        run(gate.hold_commit(uow_factory()), move_task, CLOCK, user, q1.id, parent_id=chain[-1].id),
        lambda: run(uow_factory(), create_task, CLOCK, user, TaskFields(title="Too deep", parent_id=q2.id)),
    )
    assert not isinstance(first, BaseException) and first.fields.parent_id == chain[-1].id
    assert isinstance(rival, ValidationFailed), rival
    async with uow_factory() as uow:
        assert await uow.tasks.children(user, q2.id) == []
        assert await uow.tasks.ancestors(user, q2.id) == [q1.id, *(task.id for task in reversed(chain))]


# Categories


async def test_two_changes_of_one_category_both_survive(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = await new_category(uow_factory, user)
    gate = Gate()
    results = await interleave(
        gate,
        run(gate.hold(uow_factory()), update_category, CLOCK, user, category.id, {"name": "Office"}),
        lambda: run(uow_factory(), update_category, CLOCK, user, category.id, {"color": "#00ff00"}),
    )
    assert [result.version for result in succeeded(results)] == [2, 3]
    stored = await get_category(uow_factory(), user, category.id)
    assert (stored.fields, stored.version) == (CategoryFields("Office", "#00ff00"), 3)


async def test_of_two_category_changes_made_on_the_same_if_match_only_the_first_succeeds(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = await new_category(uow_factory, user)
    gate = Gate()
    first, rival = await interleave(
        gate,
        run(gate.hold(uow_factory()), update_category, CLOCK, user, category.id, {"name": "First"}, if_match=1),
        lambda: run(uow_factory(), update_category, CLOCK, user, category.id, {"name": "Second"}, if_match=1),
    )
    assert not isinstance(first, BaseException) and first.version == 2
    assert isinstance(rival, PreconditionFailed) and rival.current_version == 2
    stored = await get_category(uow_factory(), user, category.id)
    assert (stored.fields.name, stored.version) == ("First", 2)


async def test_two_categories_renamed_to_one_name_at_once_one_is_refused(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    work, home = await new_category(uow_factory, user, "Work"), await new_category(uow_factory, user, "Home")
    gate = Gate()
    # The first has checked the name and staged it; the rival takes it before the first commits.
    results = await interleave(
        gate,
        run(gate.hold_commit(uow_factory()), update_category, CLOCK, user, work.id, {"name": "Office"}),
        lambda: run(uow_factory(), update_category, CLOCK, user, home.id, {"name": "OFFICE"}),
    )
    refused = [result for result in results if isinstance(result, Conflict)]
    assert len(refused) == 1, results
    names = [(await get_category(uow_factory(), user, category.id)).fields.name for category in (work, home)]
    assert sorted(name.lower() for name in names) in (["home", "office"], ["office", "work"])


# Units of work


async def test_units_of_work_that_overlap_keep_each_others_writes(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    alice, bob = new_user(), new_user()
    gate = Gate()
    results = await interleave(
        gate,
        run(gate.hold_commit(uow_factory()), create_task, CLOCK, alice, TaskFields(title="Alice's")),
        lambda: new_task(uow_factory, bob),
    )
    for user, task in zip((alice, bob), succeeded(results), strict=True):
        assert await stored_task(uow_factory, user, task.id) == task


# SQLite: two processes on one file


@pytest.fixture
async def second_sqlite_process(sqlite_url: str) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work of another engine on the test's SQLite file, as another worker process
    has them: its writers take turns with this one's on the file's lock, not in memory."""
    engine = create_engine(sqlite_url)
    yield lambda: SqlAlchemyUnitOfWork(engine)
    await engine.dispose()


async def test_sqlite_workers_changing_one_task_both_keep_their_change(
    sqlite_engine: AsyncEngine, second_sqlite_process: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    def this_process() -> UnitOfWork:
        return SqlAlchemyUnitOfWork(sqlite_engine)

    user = new_user()
    task = await new_task(this_process, user)
    gate = Gate()
    first, rival = succeeded(
        await interleave(
            gate,
            run(gate.hold(this_process()), patch_task, CLOCK, user, task.id, {"title": "Renamed"}),
            lambda: run(second_sqlite_process(), patch_task, CLOCK, user, task.id, {"priority": Priority.HIGH}),
        )
    )
    assert (first.version, rival.version) == (2, 3)
    stored = await stored_task(this_process, user, task.id)
    assert (stored.fields.title, stored.fields.priority, stored.version) == ("Renamed", Priority.HIGH, 3)


async def test_a_sqlite_change_waits_for_another_programs_write_and_applies_on_top(
    sqlite_url: str, sqlite_engine: AsyncEngine, new_user: Callable[[], str]
) -> None:
    """Another program (a backup, the sqlite3 shell) takes none of our turns: only SQLite's
    own lock, taken up front (`BEGIN IMMEDIATE`), keeps a change from being made on what it
    read before that program's write."""

    def this_process() -> UnitOfWork:
        return SqlAlchemyUnitOfWork(sqlite_engine)

    user = new_user()
    task = await new_task(this_process, user)
    other = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None, timeout=TIMEOUT)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "UPDATE tasks SET title = 'Theirs', version = version + 1 WHERE user_id = ? AND id = ?",
            (user, task.id.hex),
        )
        change = asyncio.ensure_future(
            run(this_process(), patch_task, CLOCK, user, task.id, {"priority": Priority.HIGH})
        )
        await asyncio.sleep(SETTLE)
        assert not change.done(), "the change did not wait for the other program's write"
        other.execute("COMMIT")
    finally:
        other.close()
    changed = await asyncio.wait_for(change, TIMEOUT)
    assert (changed.fields.title, changed.fields.priority, changed.version) == ("Theirs", Priority.HIGH, 3)


async def test_a_sqlite_read_lets_a_write_of_its_process_finish_first(
    sqlite_engine: AsyncEngine, new_user: Callable[[], str]
) -> None:
    user = new_user()
    views = SqliteTaskViews(sqlite_engine, writer_first_seconds=TIMEOUT)
    async with SqlAlchemyUnitOfWork(sqlite_engine) as writer:
        task = Task.new(user, TaskFields("Written while a list was asked for").validated(), SystemClock().now())
        await writer.tasks.add(task)
        listing = asyncio.ensure_future(views.list_for_user(user, TaskQuery()))
        await asyncio.sleep(SETTLE)
        assert not listing.done()  # it waits for the writer, whose statements then come first
        await writer.commit()
    page = await asyncio.wait_for(listing, TIMEOUT)
    assert [view["id"] for view in orjson.loads(orjson.dumps(list(page.items)))] == [str(task.id)]


async def test_a_sqlite_read_waits_for_a_write_of_its_process_only_so_long(
    sqlite_engine: AsyncEngine, new_user: Callable[[], str]
) -> None:
    user = new_user()
    views = SqliteTaskViews(sqlite_engine, writer_first_seconds=SETTLE / 4)
    async with SqlAlchemyUnitOfWork(sqlite_engine) as writer:
        await writer.tasks.add(Task.new(user, TaskFields("Not yet").validated(), SystemClock().now()))
        page = await asyncio.wait_for(views.list_for_user(user, TaskQuery()), SETTLE)
        assert list(page.items) == []  # read without waiting for the commit, which is to come
        await writer.commit()


async def test_a_sqlite_file_that_cannot_be_opened_is_unavailable_every_time(tmp_path: Path) -> None:
    """A failed start gives its writer's turn back: the next write fails as promptly (503),
    instead of waiting for a turn that never comes, and nothing escapes as a 500."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-folder' / 'todo.db'}")
    try:
        for _ in range(2):
            with pytest.raises(StorageUnavailable):
                await asyncio.wait_for(new_task(lambda: SqlAlchemyUnitOfWork(engine), "someone"), TIMEOUT / 2)
    finally:
        await engine.dispose()


def test_a_sqlite_writer_that_gives_up_waiting_leaves_no_thread_waiting(tmp_path: Path) -> None:
    """Another worker holds the file's writer lock past a writer's patience: the writer gives up,
    and nothing of its wait is left behind. A thread still blocked on the lock would keep its
    process from stopping (asyncio waits for its threads) until the other worker let go."""
    database = tmp_path / "todo.db"
    other_worker = os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other_worker, fcntl.LOCK_EX)
    worker = textwrap.dedent(
        f"""
        import asyncio
        from todo_adapters.sqlalchemy.engine import SqliteWriters

        async def write() -> None:
            try:
                await SqliteWriters({str(database)!r}).acquire({SETTLE})
            except TimeoutError:
                print("gave up")

        asyncio.run(write())
        """
    )
    try:
        # It stops while the other worker holds on (a left thread would keep it until we let go).
        finished = subprocess.run([sys.executable, "-c", worker], capture_output=True, timeout=TIMEOUT, check=True)
        assert finished.stdout == b"gave up\n"
    finally:
        os.close(other_worker)


async def test_a_sqlite_writer_takes_its_turn_soon_after_another_worker_lets_go(tmp_path: Path) -> None:
    writers = SqliteWriters(str(tmp_path / "todo.db"))
    other_worker = os.open(tmp_path / "todo.db-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other_worker, fcntl.LOCK_EX)
        turn = asyncio.ensure_future(writers.acquire(TIMEOUT))
        await asyncio.sleep(SETTLE)
        assert not turn.done()
        fcntl.flock(other_worker, fcntl.LOCK_UN)
        await asyncio.wait_for(turn, SETTLE)
        writers.release()
    finally:
        os.close(other_worker)
