"""Delta sync and idempotency keys on every adapter: what a client that keeps a copy relies on."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest

from tests.conftest import Backend
from tests.contract.test_concurrency import TIMEOUT, Gate, interleave
from tests.domain.conftest import FixedClock
from todo_core.category import CategoryFields
from todo_core.commands import run, run_once
from todo_core.errors import NotFound, StorageUnavailable, SyncExpired, ValidationFailed
from todo_core.idempotency import Answer, IdempotencyKey
from todo_core.ports import UnitOfWork
from todo_core.sync import START, ChangePage, ChangePosition
from todo_core.task import TaskFields
from todo_core.use_cases.batch import MoveTask, PatchTask, run_batch
from todo_core.use_cases.categories import create_category, delete_category, update_category
from todo_core.use_cases.sync import changes_since, purge_expired
from todo_core.use_cases.tasks import complete_task, create_task, delete_task, patch_task


def parsed(views: Any) -> list[dict[str, Any]]:
    """Views as a client reads them: parsed from the JSON they serialize to."""
    return list(orjson.loads(orjson.dumps(list(views))))


@dataclass
class Copy:
    """A client's copy of one user's data, kept by syncing."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    since: ChangePosition | None = None
    pages: int = 0

    def apply(self, page: ChangePage) -> None:
        for view in parsed(page.categories):
            self.categories[view["id"]] = view
        for view in parsed(page.tasks):
            self.tasks[view["id"]] = view
        for category_id in page.deleted_categories:
            self.categories.pop(str(category_id), None)
        for task_id in page.deleted_tasks:
            self.tasks.pop(str(task_id), None)
        self.since = page.next
        self.pages += 1

    async def sync(self, backend: Backend, user: str, limit: int = 100) -> None:
        """Sync until there is nothing more (each page bounded; at most 1000 pages)."""
        for _ in range(1000):
            page = await changes_since(backend.feed, user, self.since, limit)
            self.apply(page)
            if not page.has_more:
                return
        raise AssertionError("sync did not end")


async def server_state(backend: Backend, user: str) -> Copy:
    """The user's data as a fresh client sees it."""
    snapshot = Copy()
    await snapshot.sync(backend, user, limit=1000)
    return snapshot


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


async def test_a_command_that_changes_nothing_takes_no_change_number(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Same"))
    category = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Home"))
    before = await backend.feed.change_number(user)

    unchanged = await run(backend.uow_factory(), patch_task, clock, user, task.id, {"title": "Same"})
    await run(backend.uow_factory(), update_category, clock, user, category.id, {"name": "Home"})
    operations = [PatchTask(task.id, {"title": "Same"}), MoveTask(task.id)]
    await run(backend.uow_factory(), run_batch, clock, user, operations)

    assert unchanged == task
    assert await backend.feed.change_number(user) == before


async def test_a_snapshot_holds_everything_and_no_deletions(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user, other = new_user(), new_user()
    work = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Work"))
    kept = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Kept", category_id=work.id))
    gone = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Gone"))
    await run(backend.uow_factory(), delete_task, clock, user, gone.id)
    await run(backend.uow_factory(), create_task, clock, other, TaskFields(title="Not yours"))

    page = await changes_since(backend.feed, user, None, 100)

    assert [view["id"] for view in parsed(page.tasks)] == [str(kept.id)]
    assert [view["name"] for view in parsed(page.categories)] == ["Work"]
    assert (page.deleted_tasks, page.deleted_categories, page.has_more) == ([], [], False)
    assert page.next == ChangePosition(page.log.seq) and page.log.seq == 4  # four commits


async def test_a_delta_holds_what_changed_since_and_what_was_deleted(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    work = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Work"))
    filed = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Filed", category_id=work.id))
    untouched = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Untouched"))
    doomed = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Doomed"))
    client = Copy()
    await client.sync(backend, user)

    await run(backend.uow_factory(), delete_task, clock, user, doomed.id)
    await run(backend.uow_factory(), delete_category, clock, user, work.id)  # and takes it off `filed`
    page = await changes_since(backend.feed, user, client.since, 100)

    assert [view["id"] for view in parsed(page.tasks)] == [str(filed.id)]
    assert parsed(page.tasks)[0]["category_id"] is None
    assert (page.deleted_tasks, page.deleted_categories) == ([doomed.id], [work.id])
    assert page.categories == []
    client.apply(page)
    server = await server_state(backend, user)
    assert (client.tasks, client.categories) == (server.tasks, server.categories)
    assert str(untouched.id) in client.tasks


async def test_pages_split_anywhere_even_inside_one_commit(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    work = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Work"))
    for n in range(7):
        await run(backend.uow_factory(), create_task, clock, user, TaskFields(title=f"Task {n}", category_id=work.id))
    client = Copy()
    await client.sync(backend, user)
    await run(backend.uow_factory(), delete_category, clock, user, work.id)  # one commit: 7 tasks and a deletion

    seen: list[dict[str, Any]] = []
    deleted: list[UUID] = []
    since = client.since
    for _ in range(10):
        page = await changes_since(backend.feed, user, since, 2)
        assert len(page.tasks) + len(page.deleted_categories) <= 2
        seen += parsed(page.tasks)
        deleted += page.deleted_categories
        since = page.next
        if not page.has_more:
            break
    assert sorted(view["title"] for view in seen) == [f"Task {n}" for n in range(7)]
    assert all(view["category_id"] is None for view in seen)
    assert deleted == [work.id]
    assert (await changes_since(backend.feed, user, since, 2)).tasks == []


async def test_syncing_again_from_the_same_position_gives_the_same_changes(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="One"))
    first = await changes_since(backend.feed, user, START, 10)
    again = await changes_since(backend.feed, user, START, 10)
    assert parsed(first.tasks) == parsed(again.tasks) and first.next == again.next
    assert parsed(first.tasks)[0]["id"] == str(task.id)


async def test_a_position_from_before_purged_deletions_has_expired(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    old_client, recent_client = Copy(), Copy()
    await old_client.sync(backend, user)
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Short-lived"))
    await run(backend.uow_factory(), delete_task, clock, user, task.id)
    await recent_client.sync(backend, user)
    clock.advance(timedelta(days=31))

    purged = await purge_expired(backend.retention, clock, tombstones=timedelta(days=30), keys=timedelta(hours=24))

    assert purged is not None and purged.tombstones >= 1
    with pytest.raises(SyncExpired):
        await changes_since(backend.feed, user, old_client.since, 10)
    page = await changes_since(backend.feed, user, recent_client.since, 10)  # after the purged deletion: fine
    assert (page.tasks, page.deleted_tasks) == ([], [])


async def test_a_purge_keeps_recent_tombstones(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    client = Copy()
    await client.sync(backend, user)
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Deleted today"))
    await run(backend.uow_factory(), delete_task, clock, user, task.id)

    await purge_expired(backend.retention, clock, tombstones=timedelta(days=30), keys=timedelta(hours=24))

    page = await changes_since(backend.feed, user, client.since, 10)
    assert page.deleted_tasks == [task.id]


async def test_a_position_ahead_of_the_store_has_expired(backend: Backend, new_user: Callable[[], str]) -> None:
    # A store restored from an older backup: the client's copy may hold what the store lost.
    with pytest.raises(SyncExpired):
        await changes_since(backend.feed, new_user(), ChangePosition(5), 10)


async def test_a_change_committed_while_a_client_syncs_reaches_its_next_sync(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields(title="Before"))
    client = Copy()
    await client.sync(backend, user)
    gate = Gate()

    async def sync_while_held() -> None:
        await client.sync(backend, user)  # sees the store without the held change

    await interleave(
        gate,
        run(gate.hold_commit(backend.uow_factory()), patch_task, clock, user, task.id, {"title": "After"}),
        sync_while_held,
    )
    assert client.tasks[str(task.id)]["title"] == "Before"
    await client.sync(backend, user)
    assert client.tasks[str(task.id)]["title"] == "After"


async def test_clients_syncing_while_changes_commit_end_with_the_servers_data(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    """Three writers change one user's data at random while three clients sync in small pages;
    after the writers stop, one more sync brings every client to exactly the server's data."""
    user = new_user()
    rng = random.Random(8)
    task_ids: list[UUID] = []
    category_ids: list[UUID] = []

    async def write(steps: int) -> None:
        for _ in range(steps):
            choice = rng.random()
            try:
                if choice < 0.35 or not task_ids:
                    category = rng.choice(category_ids) if category_ids and rng.random() < 0.5 else None
                    fields = TaskFields(title=f"T{rng.randrange(1000)}", category_id=category)
                    task_ids.append((await run(backend.uow_factory(), create_task, clock, user, fields)).id)
                elif choice < 0.55:
                    changes = {"title": f"P{rng.randrange(1000)}"}
                    await run(backend.uow_factory(), patch_task, clock, user, rng.choice(task_ids), changes)
                elif choice < 0.65:
                    await run(backend.uow_factory(), complete_task, clock, user, rng.choice(task_ids))
                elif choice < 0.8:
                    await run(backend.uow_factory(), delete_task, clock, user, rng.choice(task_ids))
                elif choice < 0.9 or not category_ids:
                    fields = CategoryFields(f"C{rng.randrange(10**6)}")
                    category_ids.append((await run(backend.uow_factory(), create_category, clock, user, fields)).id)
                elif choice < 0.95:
                    changes = {"name": f"R{rng.randrange(10**6)}"}
                    await run(backend.uow_factory(), update_category, clock, user, rng.choice(category_ids), changes)
                else:
                    await run(backend.uow_factory(), delete_category, clock, user, rng.choice(category_ids))
            except (NotFound, ValidationFailed):
                pass  # deleted by another writer in the meantime (a category: "not one of yours")
            except StorageUnavailable:
                pass  # SQLite: the writers' turn did not come in time; nothing was written
            await asyncio.sleep(0)

    clients = [Copy() for _ in range(3)]
    writing = asyncio.gather(*(write(40) for _ in range(3)))

    async def keep_syncing(client: Copy) -> None:
        for _ in range(500):
            finished = writing.done()  # before the read: a sync that started after the last write
            page = await changes_since(backend.feed, user, client.since, 3)
            client.apply(page)
            if finished and not page.has_more:
                return
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(writing, *(keep_syncing(client) for client in clients)), TIMEOUT * 6)

    server = await server_state(backend, user)
    assert server.tasks or server.categories
    for client in clients:
        assert client.pages > 3  # it synced while the writers wrote, not only at the end
        assert (client.tasks, client.categories) == (server.tasks, server.categories)


# Idempotency keys


def answer(body: object) -> Answer:
    return Answer(201, (("location", "/x"),), str(body).encode())


def key(user: str, name: str = "key-1", kept: timedelta = timedelta(hours=24)) -> IdempotencyKey:
    return IdempotencyKey(user, name, "fp", kept)


async def test_a_key_runs_its_command_once_and_replays_the_answer(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    runs: list[UUID] = []

    async def command(uow: UnitOfWork) -> UUID:
        task = await create_task(uow, clock, user, TaskFields(title="Once"))
        runs.append(task.id)
        return task.id

    first = await run_once(backend.uow_factory(), clock, key(user), answer, command)
    again = await run_once(backend.uow_factory(), clock, key(user), answer, command)

    assert first == (answer(runs[0]), False)
    assert again == (first[0], True)
    assert len(runs) == 1
    assert len((await server_state(backend, user)).tasks) == 1


async def test_keys_are_per_user_and_expire(backend: Backend, new_user: Callable[[], str], clock: FixedClock) -> None:
    alice, bob = new_user(), new_user()
    runs: list[str] = []

    async def command(uow: UnitOfWork, user: str) -> str:
        await create_task(uow, clock, user, TaskFields(title="Once"))
        runs.append(user)
        return "{}"

    kept = timedelta(hours=24)
    await run_once(backend.uow_factory(), clock, key(alice, "same-key", kept), answer, command, alice)
    await run_once(backend.uow_factory(), clock, key(bob, "same-key", kept), answer, command, bob)
    clock.advance(timedelta(hours=25))
    _, replayed = await run_once(backend.uow_factory(), clock, key(alice, "same-key", kept), answer, command, alice)

    assert runs == [alice, bob, alice] and not replayed
    await purge_expired(backend.retention, clock, tombstones=timedelta(days=30), keys=kept)
    _, replayed = await run_once(backend.uow_factory(), clock, key(alice, "same-key", kept), answer, command, alice)
    assert replayed  # the recent record survived the purge


async def test_a_key_whose_command_failed_records_nothing(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()

    async def fails_after_writing(uow: UnitOfWork) -> str:
        await create_task(uow, clock, user, TaskFields(title="Half-written"))
        raise StorageUnavailable("the connection broke")

    async def succeeds(uow: UnitOfWork) -> str:
        await create_task(uow, clock, user, TaskFields(title="Whole"))
        return "{}"

    kept = timedelta(hours=1)
    with pytest.raises(StorageUnavailable):
        await run_once(backend.uow_factory(), clock, key(user, "k", kept), answer, fails_after_writing)
    assert (await server_state(backend, user)).tasks == {}  # neither the task nor the key
    _, replayed = await run_once(backend.uow_factory(), clock, key(user, "k", kept), answer, succeeds)
    assert not replayed
    assert [view["title"] for view in (await server_state(backend, user)).tasks.values()] == ["Whole"]


async def test_a_retry_while_the_first_runs_waits_and_gets_its_answer(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user = new_user()
    runs: list[UUID] = []

    async def command(uow: UnitOfWork) -> UUID:
        task = await create_task(uow, clock, user, TaskFields(title="Once"))
        runs.append(task.id)
        return task.id

    gate = Gate()
    kept = timedelta(hours=1)
    first, retry = await interleave(
        gate,
        run_once(gate.hold_commit(backend.uow_factory()), clock, key(user, "key", kept), answer, command),
        lambda: run_once(backend.uow_factory(), clock, key(user, "key", kept), answer, command),
    )
    assert len(runs) == 1
    assert first == (answer(runs[0]), False)
    assert retry == (first[0], True)
