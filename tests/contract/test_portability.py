"""Export and import on every adapter (memory, SQLite, PostgreSQL): export pages in structure
order from one snapshot; import all or nothing, with new ids, in one change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import orjson
import pytest

from tests.conftest import Backend, imported
from tests.domain.conftest import FixedClock
from todo_core.category import CategoryFields
from todo_core.commands import run
from todo_core.errors import ValidationFailed
from todo_core.portability import AccountDocument, Imported, PortableCategory, PortableTask
from todo_core.query import Sort, TaskQuery
from todo_core.sync import START
from todo_core.task import Task, TaskFields
from todo_core.use_cases import portability as use_cases
from todo_core.use_cases.categories import create_category
from todo_core.use_cases.settings import replace_settings
from todo_core.use_cases.sync import changes_since
from todo_core.use_cases.tasks import create_task, delete_task, move_task
from todo_core.user_settings import UserSettings

PAGE = 4


@pytest.fixture
def user(new_user: Callable[[], str]) -> str:
    return new_user()


async def exported(backend: Backend, user: str, page_size: int = PAGE) -> tuple[list[Task], list[int]]:
    """The user's exported tasks, and the size of each page they came in."""
    tasks: list[Task] = []
    sizes: list[int] = []
    async with use_cases.export_account(backend.exports, user, page_size=page_size) as export:
        async for page in export.task_pages:
            tasks += page
            sizes.append(len(page))
            assert len(sizes) < 1000, "paging did not end"
    return tasks, sizes


async def tree_of(backend: Backend, clock: FixedClock, user: str) -> dict[str, Task]:
    """A varied tree: three top-level tasks (one moved first), steps down to the fifth level."""
    made: dict[str, Task] = {}

    async def make(name: str, parent: str | None = None) -> None:
        fields = TaskFields(name, parent_id=made[parent].id if parent else None)
        made[name] = await run(backend.uow_factory(), create_task, clock, user, fields)

    for name in ("a", "b", "c"):
        await make(name)
    for name, parent in [("b1", "b"), ("b2", "b"), ("b3", "b"), ("b21", "b2"), ("b22", "b2"), ("a1", "a")]:
        await make(name, parent)
    for name, parent in [("b211", "b21"), ("b2111", "b211"), ("c1", "c"), ("b212", "b21")]:
        await make(name, parent)
    await run(backend.uow_factory(), move_task, clock, user, made["c"].id, after=None)  # c, a, b
    await run(backend.uow_factory(), move_task, clock, user, made["b3"].id, after=None)  # b3, b1, b2
    return made


async def test_an_export_pages_every_task_once_parents_before_steps_siblings_in_order(
    backend: Backend, user: str, new_user: Callable[[], str]
) -> None:
    clock = FixedClock()
    made = await tree_of(backend, clock, user)
    await run(backend.uow_factory(), create_task, clock, new_user(), TaskFields("Someone else's"))

    tasks, sizes = await exported(backend, user)

    names = {task.id: task.fields.title for task in tasks}
    order = [names[task.id] for task in tasks]
    assert sorted(order) == sorted(made)  # each once, and no other user's
    assert all(size <= PAGE for size in sizes) and len(sizes) >= len(made) // PAGE
    index = {task.id: n for n, task in enumerate(tasks)}
    for task in tasks:
        if task.fields.parent_id is not None:
            assert index[task.fields.parent_id] < index[task.id], names[task.id]

    def steps(parent: str | None) -> list[str]:
        parent_id = made[parent].id if parent else None
        return [names[task.id] for task in tasks if task.fields.parent_id == parent_id]

    assert steps(None) == ["c", "a", "b"]
    assert steps("b") == ["b3", "b1", "b2"]
    assert steps("b21") == ["b211", "b212"]
    assert order[:3] == ["c", "a", "b"]  # the levels in turn: the top level first


async def test_an_export_reads_one_snapshot_whatever_commits_meanwhile(backend: Backend, user: str) -> None:
    clock = FixedClock()
    first = [await run(backend.uow_factory(), create_task, clock, user, TaskFields(f"Task {n}")) for n in range(9)]
    seen: list[Task] = []
    async with use_cases.export_account(backend.exports, user, page_size=PAGE) as export:
        pages = export.task_pages
        seen += await anext(pages)
        await run(backend.uow_factory(), create_task, clock, user, TaskFields("Added meanwhile"))
        await run(backend.uow_factory(), delete_task, clock, user, first[-1].id)
        await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Made meanwhile"))
        async for page in pages:
            seen += page
        assert export.categories == []
    assert [task.id for task in seen] == [task.id for task in first]


async def test_an_export_of_a_user_without_data_has_the_default_settings_and_nothing_else(
    backend: Backend, user: str
) -> None:
    async with use_cases.export_account(backend.exports, user) as export:
        assert export.settings == UserSettings()
        assert export.categories == []
        assert [page async for page in export.task_pages] == []


def portable(title: str, task_id: int, parent: int | None = None, **fields: Any) -> PortableTask:
    parent_id = UUID(int=parent) if parent is not None else None
    return PortableTask(UUID(int=task_id), TaskFields(title, parent_id=parent_id, **fields))


async def titles_under(backend: Backend, user: str, parent: UUID | None) -> list[str]:
    query = TaskQuery(
        sort=Sort.parse("position"), limit=200, parent_id=parent, top_level=True if parent is None else None
    )
    page = await backend.views.list_for_user(user, query)
    views: Sequence[Any] = page.items
    return [_title(view) for view in views]


def _title(view: Any) -> str:
    return str(orjson.loads(orjson.dumps(view))["title"])


async def test_an_import_adds_new_tasks_after_the_users_own_keeping_structure_and_order_in_one_change(
    backend: Backend, user: str
) -> None:
    clock = FixedClock()
    home = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Home", "#112233"))
    await run(backend.uow_factory(), create_task, clock, user, TaskFields("Mine"))
    before = (await changes_since(backend.feed, user, None, 1000)).next
    document = AccountDocument(
        categories=[
            PortableCategory(UUID(int=100), CategoryFields("HOME", "#ffffff")),
            PortableCategory(UUID(int=101), CategoryFields("Work")),
        ],
        tasks=[
            portable("Step two", 3, parent=1),
            portable("Plan", 1, category_id=UUID(int=101)),
            portable("Step one", 2, parent=1, category_id=UUID(int=100)),
            portable("Inbox", 4),
            portable("Sub-step", 5, parent=2),
        ],
    )

    imported = await import_into(backend, clock, user, document)

    assert (imported.categories, imported.merged_categories, imported.tasks) == (1, 1, 5)
    assert imported.category_ids[UUID(int=100)] == home.id  # merged by name, in any case
    assert set(imported.task_ids) == {UUID(int=n) for n in range(1, 6)}
    assert not set(imported.task_ids.values()) & set(imported.task_ids)  # new ids
    assert await titles_under(backend, user, None) == ["Mine", "Plan", "Inbox"]
    plan = imported.task_ids[UUID(int=1)]
    assert await titles_under(backend, user, plan) == ["Step two", "Step one"]
    assert await titles_under(backend, user, imported.task_ids[UUID(int=2)]) == ["Sub-step"]
    async with backend.uow_factory() as uow:
        step_one = await uow.tasks.get(user, imported.task_ids[UUID(int=2)])
        work = await uow.categories.get(user, imported.category_ids[UUID(int=101)])
        kept = await uow.categories.get(user, home.id)
    assert step_one is not None and step_one.fields.category_id == home.id
    assert work is not None and work.fields.name == "Work"
    assert kept == home  # merged into: its color stays
    changes = await changes_since(backend.feed, user, before, 1000)
    assert len(changes.tasks) == 5 and len(changes.categories) == 1
    assert changes.next.seq == before.seq + 1  # the whole import is one change


@pytest.mark.parametrize(
    ("tasks", "field"),
    [
        ([portable("Fine", 1), portable("Fine", 2), portable(" ", 3)], "tasks[2].title"),
        ([portable("Orphan", 1, parent=9)], "tasks[0].parent_id"),
        ([portable("Loop", 1, parent=2), portable("Loop", 2, parent=1)], "tasks[0].parent_id"),
        ([portable(f"Level {n}", n + 1, parent=n if n else None) for n in range(6)], "tasks[5].parent_id"),
        ([portable("Twice", 1), portable("Twice", 1)], "tasks[1].id"),
        ([portable("Filed", 1, category_id=UUID(int=7))], "tasks[0].category_id"),
    ],
)
async def test_a_document_that_breaks_a_rule_imports_nothing(
    backend: Backend, user: str, tasks: list[PortableTask], field: str
) -> None:
    clock = FixedClock()
    document = AccountDocument(
        categories=[PortableCategory(UUID(int=50), CategoryFields("Fine"))],
        tasks=tasks,
        settings=UserSettings("Europe/Berlin"),
    )
    with pytest.raises(ValidationFailed) as refused:
        await import_into(backend, clock, user, document)

    assert field in {error.field for error in refused.value.errors}
    assert (await changes_since(backend.feed, user, None, 1000)).next == START  # nothing at all
    async with use_cases.export_account(backend.exports, user) as export:
        assert export.settings == UserSettings()


async def test_a_document_without_settings_keeps_the_users_and_its_tasks_take_that_zone(
    backend: Backend, user: str
) -> None:
    clock = FixedClock()
    await run(backend.uow_factory(), replace_settings, user, UserSettings("Asia/Tokyo"))
    imported = await import_into(backend, clock, user, AccountDocument(tasks=[portable("No zone", 1)]))
    async with backend.uow_factory() as uow:
        task = await uow.tasks.get(user, imported.task_ids[UUID(int=1)])
        settings = await uow.settings.get(user)
    assert task is not None and task.fields.time_zone == "Asia/Tokyo"
    assert settings == UserSettings("Asia/Tokyo")


async def import_into(backend: Backend, clock: FixedClock, user: str, document: AccountDocument) -> Imported:
    return await imported(backend.uow_factory(), backend.reader_factory(), clock, user, document)
