"""The read side never waits for a writer, nor holds one up: on every backend."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from tests.conftest import Backend, UnitOfWorkFactory
from tests.contract.test_task_repository import NOW, add, make_task
from todo_core.category import Category, CategoryFields
from todo_core.ports import TaskViews
from todo_core.query import TaskQuery

#: Far below SQLite's busy timeout (15 s): a read that waited for the write lock would miss it.
PROMPTLY = 2.0


async def test_reads_proceed_while_a_writer_holds_its_transaction(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(user)
    await add(uow_factory, task)

    async with uow_factory() as writer:
        current = await writer.tasks.get(user, task.id)
        assert current is not None
        await writer.tasks.update(current.with_fields(dataclasses.replace(current.fields, title="Renamed"), NOW))
        # The change is not committed: readers see the last committed version, without waiting.
        found = await asyncio.wait_for(task_views.get(user, task.id), PROMPTLY)
        listed = await asyncio.wait_for(task_views.list_for_user(user, TaskQuery()), PROMPTLY)
        assert found is not None and found.version == 1
        assert len(listed.items) == 1
        await writer.commit()

    found = await task_views.get(user, task.id)
    assert found is not None and found.version == 2


async def test_a_writer_proceeds_while_readers_read(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    await add(uow_factory, *(make_task(user, f"task {n}") for n in range(20)))

    async def read_repeatedly() -> None:
        for _ in range(20):
            await task_views.list_for_user(user, TaskQuery(limit=5))

    async def write() -> None:
        await add(uow_factory, make_task(user, "written meanwhile"))

    await asyncio.wait_for(asyncio.gather(*(read_repeatedly() for _ in range(4)), write()), 10 * PROMPTLY)
    assert len((await task_views.list_for_user(user, TaskQuery(limit=200))).items) == 21


async def test_a_read_only_unit_of_work_does_not_wait_for_a_writer(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = Category.new(user, CategoryFields("Work"), NOW)
    async with backend.uow_factory() as setup:
        await setup.categories.add(category)
        await setup.commit()

    async with backend.uow_factory() as writer:
        await writer.categories.remove(user, category.id, NOW)
        async with backend.reader_factory() as reader:
            listed = await asyncio.wait_for(reader.categories.list_for_user(user), PROMPTLY)
        assert [found.id for found in listed] == [category.id]
        await writer.commit()
