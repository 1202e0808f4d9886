"""SQLite: a large import is written in slices that let other writers in between, and is still
all or nothing: until it commits, no read shows any of it and its user's writes are refused;
a failure half-way leaves nothing behind; a crash's leftovers are swept."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import imported
from tests.contract.test_sync import parsed
from tests.domain.conftest import FixedClock
from todo_adapters.sqlalchemy import import_slices
from todo_adapters.sqlalchemy.changes import SqliteChangeFeed
from todo_adapters.sqlalchemy.engine import create_engine
from todo_adapters.sqlalchemy.exports import SqliteExportReader
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_adapters.sqlalchemy.views import SqliteTaskViews
from todo_api.cli import migrate
from todo_core.commands import run
from todo_core.errors import Conflict, UserBusy
from todo_core.portability import AccountDocument, PortableTask
from todo_core.query import TaskQuery
from todo_core.sync import START
from todo_core.task import TaskFields
from todo_core.use_cases import portability as use_cases
from todo_core.use_cases.sync import changes_since
from todo_core.use_cases.tasks import create_task, tag_counts

CLOCK = FixedClock()
#: Enough tasks for many slices (several seconds of writing on a loaded machine).
TASKS = 3000
TIMEOUT = 120


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Path]]:
    """A SQLite file of the test's own (a test may add a trigger to it)."""
    path = tmp_path / "todo.db"
    await asyncio.to_thread(migrate, f"sqlite+aiosqlite:///{path}")  # it runs an event loop of its own
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield engine, path
    await engine.dispose()


def document(count: int, *, poison_at: int | None = None) -> AccountDocument:
    tasks = [
        PortableTask(uuid.uuid4(), TaskFields("poison" if n == poison_at else f"Task {n}", tags=(f"tag-{n % 3}",)))
        for n in range(count)
    ]
    return AccountDocument(tasks=tasks)


def rows_of(path: Path, user: str) -> tuple[int, int, str | None]:
    """What the file holds for the user, whatever reads show: task rows, tag rows, the mark."""
    with sqlite3.connect(path) as connection:
        tasks = connection.execute("SELECT count(*) FROM tasks WHERE user_id = ?", (user,)).fetchone()[0]
        tags = connection.execute("SELECT count(*) FROM task_tags WHERE user_id = ?", (user,)).fetchone()[0]
        mark = connection.execute("SELECT importing FROM user_changes WHERE user_id = ?", (user,)).fetchone()
    return tasks, tags, mark[0] if mark else None


def counted(path: Path, user: str) -> int:
    """The user's task count as the cap on tasks reads it: the tasks shown, not those written ahead."""
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT tasks FROM user_changes WHERE user_id = ?", (user,)).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.alone
async def test_other_writers_go_between_slices_while_nothing_of_the_import_shows(
    database: tuple[AsyncEngine, Path],
) -> None:
    engine, path = database
    importer, other = "importer", "other"
    await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, importer, TaskFields("Mine before"))
    views, feed = SqliteTaskViews(engine), SqliteChangeFeed(engine)

    started = time.monotonic()
    importing = asyncio.ensure_future(
        imported(
            SqlAlchemyUnitOfWork(engine), SqlAlchemyUnitOfWork(engine, read_only=True), CLOCK, importer, document(TASKS)
        )
    )
    deadline = time.monotonic() + TIMEOUT
    while rows_of(path, importer)[0] < 1 + import_slices.SLICE_BATCH:  # slices committed
        assert time.monotonic() < deadline and not importing.done()
        await asyncio.sleep(0.01)

    # Another user's write takes its turn between two slices: done while the import is not.
    await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, other, TaskFields("Meanwhile"))
    assert not importing.done()
    # Nothing of the import shows: not in lists, not to sync, not in tags or exports.
    listed = await views.list_for_user(importer, TaskQuery(limit=200))
    assert len(listed.items) == 1
    changes = await changes_since(feed, importer, START, 500)
    assert [view["title"] for view in parsed(changes.tasks)] == ["Mine before"]
    assert await tag_counts(SqlAlchemyUnitOfWork(engine, read_only=True), importer) == []
    assert counted(path, importer) == 1
    async with use_cases.export_account(SqliteExportReader(engine), importer) as export:
        assert [task.fields.title async for page in export.task_pages for task in page] == ["Mine before"]
    # The importing user's own writes are refused meanwhile, as they wait for it on PostgreSQL.
    with pytest.raises(UserBusy):
        await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, importer, TaskFields("Refused"))

    result = await asyncio.wait_for(importing, TIMEOUT)
    took = time.monotonic() - started

    assert result.tasks == TASKS
    assert len((await views.list_for_user(importer, TaskQuery(limit=200))).items) == 200
    synced, position = 0, changes.next  # every task, after the position handed out meanwhile
    for _ in range(10):
        page = await changes_since(feed, importer, position, 1000)
        synced, position = synced + len(page.tasks), page.next
        if not page.has_more:
            break
    assert synced == TASKS
    assert position.seq == changes.next.seq + 1  # in one change
    assert len(await tag_counts(SqlAlchemyUnitOfWork(engine, read_only=True), importer)) == 3
    assert rows_of(path, importer) == (TASKS + 1, TASKS, None)
    assert counted(path, importer) == TASKS + 1
    assert not list(path.parent.glob("todo.db-import-*"))  # its lock file is gone
    assert took > 3 * import_slices.SLICE_SECONDS  # it did take several slices


async def test_an_import_whose_writing_fails_after_some_slices_leaves_nothing(
    database: tuple[AsyncEngine, Path],
) -> None:
    engine, path = database
    user = "importer"
    with sqlite3.connect(path) as connection:  # a write that fails far into the import
        connection.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON tasks WHEN NEW.title = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
        )
    poisoned = document(TASKS, poison_at=TASKS - 10)

    with pytest.raises(Conflict):  # the database refused a row
        await imported(
            SqlAlchemyUnitOfWork(engine), SqlAlchemyUnitOfWork(engine, read_only=True), CLOCK, user, poisoned
        )

    assert rows_of(path, user) == (0, 0, None)  # the slices written are deleted, the mark cleared
    assert counted(path, user) == 0
    assert not list(path.parent.glob("todo.db-import-*"))
    made = await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, user, TaskFields("Works again"))
    assert made.fields.title == "Works again"


async def test_what_a_crashed_import_wrote_is_swept_and_never_shown(database: tuple[AsyncEngine, Path]) -> None:
    """A process that died between slices: its rows and mark stay, its lock file is free. The
    sweep (at startup, in maintenance) deletes them; an import still running is left alone."""
    engine, path = database
    user = "importer"
    await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, user, TaskFields("Mine"))
    running_user, running_token = "still-importing", "b" * 32
    with sqlite3.connect(path) as connection:
        seq = connection.execute("SELECT seq FROM user_changes WHERE user_id = ?", (user,)).fetchone()[0]
        for who, token in ((user, "a" * 32), (running_user, running_token)):
            connection.execute(
                "INSERT INTO user_changes (user_id, seq, horizon, importing) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET importing = excluded.importing",
                (who, seq, token),
            )
            # Copies of the user's task, as an import writes ahead: new ids, the number above the user's.
            columns = [row[1] for row in connection.execute("PRAGMA table_info(tasks)")]
            given = ("user_id", "id", "change_seq")
            copied = ", ".join("?" if name in given else name for name in columns)
            copy = f"INSERT INTO tasks ({', '.join(columns)}) SELECT {copied} FROM tasks"
            copy += " WHERE user_id = ? AND change_seq <= ?"
            for _ in range(1200):
                fresh = {"user_id": who, "id": uuid.uuid4().hex, "change_seq": seq + 1}
                connection.execute(copy, [*(fresh[name] for name in columns if name in given), user, seq])
    views = SqliteTaskViews(engine)
    assert len((await views.list_for_user(user, TaskQuery(limit=200))).items) == 1  # not shown
    with pytest.raises(UserBusy):
        await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, user, TaskFields("Refused"))

    with import_slices._ImportLock(str(path), running_token):  # a live import's lock file is held
        swept = await import_slices.sweep_abandoned_imports(engine)

    assert swept == 1200
    assert rows_of(path, user) == (1, 0, None)
    assert rows_of(path, running_user) == (1200, 0, running_token)  # still running: left alone
    await run(SqlAlchemyUnitOfWork(engine), create_task, CLOCK, user, TaskFields("Works again"))
    assert counted(path, user) == 2  # the swept rows were never counted


def reader(engine: AsyncEngine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(engine, read_only=True)
