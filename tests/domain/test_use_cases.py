"""What a user can do, through the use cases, on the in-memory adapter with a clock that stands still."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from tests.conftest import imported, stored_task
from tests.domain.conftest import FixedClock
from todo_adapters.memory import InMemoryStore, InMemoryTaskViews, InMemoryUnitOfWork
from todo_core.category import Category, CategoryFields
from todo_core.commands import run, run_once
from todo_core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from todo_core.idempotency import KEY_MAX_LENGTH, Answer, IdempotencyKey
from todo_core.portability import ERRORS_MAX, AccountDocument, PortableTask
from todo_core.query import Sort, SortField, TaskQuery
from todo_core.task import Priority, Task, TaskFields
from todo_core.use_cases.categories import (
    create_category,
    delete_category,
    get_category,
    list_categories,
    update_category,
)
from todo_core.use_cases.tasks import (
    complete_task,
    create_task,
    delete_task,
    list_tasks,
    patch_task,
    replace_task,
)

Uow = Callable[[], InMemoryUnitOfWork]

ALICE = "alice"
BOB = "bob"
DUE = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


async def all_tasks(views: InMemoryTaskViews, user_id: str) -> list[dict[str, Any]]:
    """What the user's task list shows: the views of all their tasks."""
    items: list[dict[str, Any]] = list((await list_tasks(views, user_id, TaskQuery(limit=200))).items)  # type: ignore[arg-type]
    return items


async def new_task(uow: Uow, clock: FixedClock, user_id: str = ALICE, **fields: object) -> Task:
    return await run(uow(), create_task, clock, user_id, TaskFields(**{"title": "A task", **fields}))  # type: ignore[arg-type]


async def new_category(uow: Uow, clock: FixedClock, user_id: str = ALICE, name: str = "Work") -> Category:
    return await run(uow(), create_category, clock, user_id, CategoryFields(name=name))


# Creating and reading


async def test_created_task_is_stored_validated_at_version_one(uow: Uow, clock: FixedClock) -> None:
    created = await new_task(uow, clock, title="  Buy milk ", tags=("a", "A"))
    kept = await stored_task(uow, ALICE, created.id)
    assert kept == created
    assert (kept.fields.title, kept.fields.tags, kept.version) == ("Buy milk", ("a",), 1)
    assert kept.created_at == kept.updated_at == clock.now()
    assert kept.completed_at is None


async def test_invalid_task_is_not_stored(uow: Uow, views: InMemoryTaskViews, clock: FixedClock) -> None:
    with pytest.raises(ValidationFailed):
        await new_task(uow, clock, title=" ")
    assert await all_tasks(views, ALICE) == []


async def test_task_created_completed_is_stamped_completed_now(uow: Uow, clock: FixedClock) -> None:
    created = await new_task(uow, clock, completed=True)
    assert created.completed_at == clock.now()


async def test_unknown_task_is_not_found(uow: Uow) -> None:
    with pytest.raises(NotFound):
        await stored_task(uow, ALICE, uuid4())


async def test_list_sorted_by_priority_goes_none_low_medium_high(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock
) -> None:
    for priority in (Priority.HIGH, Priority.NONE, Priority.MEDIUM, Priority.LOW):
        await new_task(uow, clock, title=priority.label, priority=priority)
    page = await list_tasks(views, ALICE, TaskQuery(sort=Sort(SortField.PRIORITY)))
    assert [task["title"] for task in page.items] == ["none", "low", "medium", "high"]  # type: ignore[index]


# Ownership: another user's task is, to you, a task that does not exist


@pytest.fixture
async def bobs_task(uow: Uow, clock: FixedClock) -> Task:
    return await new_task(uow, clock, user_id=BOB, title="Bob's secret")


async def test_user_cannot_read_another_users_task(uow: Uow, bobs_task: Task) -> None:
    with pytest.raises(NotFound):
        await stored_task(uow, ALICE, bobs_task.id)


async def test_user_cannot_replace_another_users_task(uow: Uow, clock: FixedClock, bobs_task: Task) -> None:
    with pytest.raises(NotFound):
        await run(uow(), replace_task, clock, ALICE, bobs_task.id, TaskFields(title="mine now"))
    assert await stored_task(uow, BOB, bobs_task.id) == bobs_task


async def test_user_cannot_patch_another_users_task(uow: Uow, clock: FixedClock, bobs_task: Task) -> None:
    with pytest.raises(NotFound):
        await run(uow(), patch_task, clock, ALICE, bobs_task.id, {"title": "mine now"})
    assert await stored_task(uow, BOB, bobs_task.id) == bobs_task


async def test_user_cannot_delete_another_users_task(uow: Uow, clock: FixedClock, bobs_task: Task) -> None:
    with pytest.raises(NotFound):
        await run(uow(), delete_task, clock, ALICE, bobs_task.id)
    assert await stored_task(uow, BOB, bobs_task.id) == bobs_task


async def test_user_cannot_complete_another_users_task(uow: Uow, clock: FixedClock, bobs_task: Task) -> None:
    with pytest.raises(NotFound):
        await run(uow(), complete_task, clock, ALICE, bobs_task.id, True)
    assert (await stored_task(uow, BOB, bobs_task.id)).fields.completed is False


async def test_list_never_shows_another_users_tasks(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, bobs_task: Task
) -> None:
    mine = await new_task(uow, clock, title="Alice's")
    assert [task["id"] for task in await all_tasks(views, ALICE)] == [mine.id]
    assert [task["id"] for task in await all_tasks(views, BOB)] == [bobs_task.id]


async def test_another_users_stale_version_does_not_reveal_the_task(
    uow: Uow, clock: FixedClock, bobs_task: Task
) -> None:
    # NotFound, not PreconditionFailed: the latter would confirm the task exists.
    with pytest.raises(NotFound):
        await run(uow(), patch_task, clock, ALICE, bobs_task.id, {"title": "x"}, if_match=99)


# Replacing and patching


async def test_replace_sets_every_field_and_bumps_the_version(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock, description="old", tags=("x",), priority=Priority.HIGH)
    clock.advance(timedelta(minutes=5))
    replaced = await run(uow(), replace_task, clock, ALICE, task.id, TaskFields(title=" New "))
    assert replaced.fields == TaskFields(title="New", time_zone="UTC")
    assert replaced.version == 2
    assert replaced.updated_at == clock.now() != replaced.created_at
    assert await stored_task(uow, ALICE, task.id) == replaced


async def test_patch_leaves_absent_fields_unchanged(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock, description="keep", tags=("keep",), priority=Priority.LOW, due_at=DUE)
    patched = await run(uow(), patch_task, clock, ALICE, task.id, {"title": "renamed"})
    assert patched.fields == TaskFields(
        title="renamed", description="keep", tags=("keep",), priority=Priority.LOW, due_at=DUE, time_zone="UTC"
    )


async def test_patch_with_null_clears_description_tags_due_date_and_category(uow: Uow, clock: FixedClock) -> None:
    category = await new_category(uow, clock)
    task = await new_task(uow, clock, description="d", tags=("t",), due_at=DUE, category_id=category.id)
    patched = await run(
        uow(),
        patch_task,
        clock,
        ALICE,
        task.id,
        {"description": None, "tags": None, "due_at": None, "category_id": None},
    )
    assert (patched.fields.description, patched.fields.tags, patched.fields.due_at, patched.fields.category_id) == (
        "",
        (),
        None,
        None,
    )


async def test_patch_with_null_title_is_refused_and_changes_nothing(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    with pytest.raises(ValidationFailed) as raised:
        await run(uow(), patch_task, clock, ALICE, task.id, {"title": None})
    assert [error.field for error in raised.value.errors] == ["title"]
    assert await stored_task(uow, ALICE, task.id) == task


async def test_patch_is_validated_like_a_new_task(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    with pytest.raises(ValidationFailed):
        await run(uow(), patch_task, clock, ALICE, task.id, {"due_at": datetime(2026, 1, 1)})
    assert await stored_task(uow, ALICE, task.id) == task


async def test_patch_that_clears_the_due_date_of_a_repeating_task_is_refused(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock, due_at=DUE, recurrence="FREQ=DAILY")
    with pytest.raises(ValidationFailed) as raised:
        await run(uow(), patch_task, clock, ALICE, task.id, {"due_at": None})
    assert [error.field for error in raised.value.errors] == ["recurrence"]


# If-Match


@pytest.mark.parametrize(
    "change",
    [
        lambda uow, clock, task_id: run(uow, patch_task, clock, ALICE, task_id, {"title": "x"}, if_match=1),
        lambda uow, clock, task_id: run(uow, replace_task, clock, ALICE, task_id, TaskFields(title="x"), if_match=1),
        lambda uow, clock, task_id: run(uow, delete_task, clock, ALICE, task_id, if_match=1),
    ],
    ids=["patch", "replace", "delete"],
)
async def test_change_with_a_stale_version_fails_and_changes_nothing(
    uow: Uow, clock: FixedClock, change: Callable[..., object]
) -> None:
    task = await new_task(uow, clock)
    current = await run(uow(), patch_task, clock, ALICE, task.id, {"title": "v2"})
    with pytest.raises(PreconditionFailed) as raised:
        await change(uow(), clock, task.id)  # type: ignore[misc]
    assert raised.value.current_version == 2
    assert await stored_task(uow, ALICE, task.id) == current


async def test_change_with_the_current_version_succeeds(uow: Uow, views: InMemoryTaskViews, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    patched = await run(uow(), patch_task, clock, ALICE, task.id, {"title": "x"}, if_match=task.version)
    assert patched.version == 2
    await run(uow(), delete_task, clock, ALICE, task.id, if_match=patched.version)
    assert await all_tasks(views, ALICE) == []


# Deleting


async def test_deleted_task_is_gone(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    await run(uow(), delete_task, clock, ALICE, task.id)
    with pytest.raises(NotFound):
        await stored_task(uow, ALICE, task.id)
    with pytest.raises(NotFound):
        await run(uow(), delete_task, clock, ALICE, task.id)


# Completing


async def test_completing_stamps_the_time_and_reopening_clears_it(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    clock.advance(timedelta(hours=1))
    done = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert (done.fields.completed, done.completed_at, done.version) == (True, clock.now(), 2)
    reopened = await run(uow(), complete_task, clock, ALICE, task.id, False)
    assert (reopened.fields.completed, reopened.completed_at, reopened.version) == (False, None, 3)


async def test_completion_without_an_argument_toggles(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    assert (await run(uow(), complete_task, clock, ALICE, task.id)).fields.completed is True
    assert (await run(uow(), complete_task, clock, ALICE, task.id)).fields.completed is False
    assert (await run(uow(), complete_task, clock, ALICE, task.id)).fields.completed is True


async def test_completing_an_already_completed_task_keeps_its_completion_time(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock)
    first = await run(uow(), complete_task, clock, ALICE, task.id, True)
    clock.advance(timedelta(days=1))
    again = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert again.completed_at == first.completed_at


async def test_completing_a_plain_task_creates_no_other_task(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock
) -> None:
    task = await new_task(uow, clock, due_at=DUE)
    done = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert done.next_occurrence_id is None
    assert len(await all_tasks(views, ALICE)) == 1


# Completing a repeating task


@pytest.fixture
async def monthly_task(uow: Uow, clock: FixedClock) -> Task:
    category = await new_category(uow, clock)
    return await new_task(
        uow,
        clock,
        title="Pay rent",
        description="to the landlord",
        priority=Priority.HIGH,
        tags=("home", "money"),
        category_id=category.id,
        due_at=DUE,
        remind_at=DUE - timedelta(hours=2),
        recurrence="FREQ=MONTHLY",
    )


async def test_completing_a_repeating_task_creates_the_next_occurrence(
    uow: Uow, clock: FixedClock, monthly_task: Task
) -> None:
    clock.advance(timedelta(days=1))
    done = await run(uow(), complete_task, clock, ALICE, monthly_task.id, True)
    assert done.next_occurrence_id is not None
    following = await stored_task(uow, ALICE, done.next_occurrence_id)
    original = monthly_task.fields
    assert following.fields == TaskFields(
        title=original.title,
        description=original.description,
        priority=original.priority,
        tags=original.tags,
        category_id=original.category_id,
        completed=False,
        due_at=datetime(2026, 3, 31, 9, 0, tzinfo=UTC),
        remind_at=datetime(2026, 3, 31, 7, 0, tzinfo=UTC),
        recurrence="FREQ=MONTHLY",
        time_zone=original.time_zone,
    )
    assert (following.version, following.created_at, following.completed_at) == (1, clock.now(), None)
    assert following.id != monthly_task.id
    assert following.next_occurrence_id is None


async def test_completing_a_repeating_task_through_a_patch_also_creates_the_next_occurrence(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, monthly_task: Task
) -> None:
    done = await run(uow(), patch_task, clock, ALICE, monthly_task.id, {"completed": True})
    assert done.next_occurrence_id is not None
    assert len(await all_tasks(views, ALICE)) == 2


async def test_reopening_a_completed_repeating_task_creates_no_other(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, monthly_task: Task
) -> None:
    done = await run(uow(), complete_task, clock, ALICE, monthly_task.id, True)
    reopened = await run(uow(), complete_task, clock, ALICE, monthly_task.id, False)
    assert reopened.next_occurrence_id == done.next_occurrence_id
    assert len(await all_tasks(views, ALICE)) == 2


async def test_completing_again_after_reopening_does_not_fork_the_series(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, monthly_task: Task
) -> None:
    first = await run(uow(), complete_task, clock, ALICE, monthly_task.id, True)
    for _ in range(3):
        await run(uow(), complete_task, clock, ALICE, monthly_task.id)  # reopen
        again = await run(uow(), complete_task, clock, ALICE, monthly_task.id)  # complete
        assert again.next_occurrence_id == first.next_occurrence_id
    assert len(await all_tasks(views, ALICE)) == 2


async def test_completing_each_occurrence_walks_the_series(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock
) -> None:
    task = await new_task(uow, clock, due_at=DUE, recurrence="FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3")
    dues, rules = [], []
    current: Task | None = task
    for _ in range(5):
        assert current is not None
        dues.append(current.fields.due_at)
        rules.append(current.fields.recurrence)
        done = await run(uow(), complete_task, clock, ALICE, current.id, True)
        current = await stored_task(uow, ALICE, done.next_occurrence_id) if done.next_occurrence_id else None
        if current is None:
            break
    assert dues == [DUE, datetime(2026, 2, 28, 9, 0, tzinfo=UTC), datetime(2026, 3, 31, 9, 0, tzinfo=UTC)]
    assert rules == [
        "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
        "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=2",
        "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=1",
    ]
    assert len(await all_tasks(views, ALICE)) == 3


async def test_completing_the_last_occurrence_before_until_creates_none(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock
) -> None:
    task = await new_task(uow, clock, due_at=DUE, recurrence="FREQ=MONTHLY;UNTIL=20260330")
    done = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert done.next_occurrence_id is None
    assert len(await all_tasks(views, ALICE)) == 1


async def test_next_occurrence_without_a_reminder_has_none(uow: Uow, clock: FixedClock) -> None:
    task = await new_task(uow, clock, due_at=DUE, recurrence="FREQ=DAILY")
    done = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert done.next_occurrence_id is not None
    assert (await stored_task(uow, ALICE, done.next_occurrence_id)).fields.remind_at is None


# Categories


async def test_created_category_is_trimmed_with_its_color_lowercased(uow: Uow, clock: FixedClock) -> None:
    created = await run(uow(), create_category, clock, ALICE, CategoryFields(name=" Work ", color="#ABCDEF"))
    stored = await get_category(uow(), ALICE, created.id)
    assert (stored.fields.name, stored.fields.color, stored.version) == ("Work", "#abcdef", 1)


@pytest.mark.parametrize("duplicate", ["Work", "work", "WORK", " wOrK "])
async def test_duplicate_category_name_in_any_case_is_a_conflict(uow: Uow, clock: FixedClock, duplicate: str) -> None:
    await new_category(uow, clock, name="Work")
    with pytest.raises(Conflict):
        await new_category(uow, clock, name=duplicate)
    assert len(await list_categories(uow(), ALICE)) == 1


async def test_two_users_may_each_have_a_category_of_the_same_name(uow: Uow, clock: FixedClock) -> None:
    await new_category(uow, clock, user_id=ALICE, name="Work")
    await new_category(uow, clock, user_id=BOB, name="work")
    assert [c.fields.name for c in await list_categories(uow(), BOB)] == ["work"]


async def test_renaming_a_category_to_another_ones_name_is_a_conflict(uow: Uow, clock: FixedClock) -> None:
    await new_category(uow, clock, name="Work")
    home = await new_category(uow, clock, name="Home")
    with pytest.raises(Conflict):
        await run(uow(), update_category, clock, ALICE, home.id, {"name": "WORK"})
    assert (await get_category(uow(), ALICE, home.id)).fields.name == "Home"


async def test_renaming_a_category_to_a_different_case_of_its_own_name_is_allowed(uow: Uow, clock: FixedClock) -> None:
    work = await new_category(uow, clock, name="work")
    renamed = await run(uow(), update_category, clock, ALICE, work.id, {"name": "Work"})
    assert (renamed.fields.name, renamed.version) == ("Work", 2)


async def test_category_update_with_null_name_is_refused(uow: Uow, clock: FixedClock) -> None:
    work = await new_category(uow, clock)
    with pytest.raises(ValidationFailed) as raised:
        await run(uow(), update_category, clock, ALICE, work.id, {"name": None})
    assert [error.field for error in raised.value.errors] == ["name"]


async def test_category_update_with_null_color_clears_it(uow: Uow, clock: FixedClock) -> None:
    work = await run(uow(), create_category, clock, ALICE, CategoryFields(name="Work", color="#123456"))
    assert (await run(uow(), update_category, clock, ALICE, work.id, {"color": None})).fields.color is None


async def test_category_update_with_a_stale_version_fails(uow: Uow, clock: FixedClock) -> None:
    work = await new_category(uow, clock)
    await run(uow(), update_category, clock, ALICE, work.id, {"name": "Job"})
    with pytest.raises(PreconditionFailed):
        await run(uow(), update_category, clock, ALICE, work.id, {"name": "Career"}, if_match=1)
    assert (await get_category(uow(), ALICE, work.id)).fields.name == "Job"


async def test_user_cannot_see_or_change_another_users_category(uow: Uow, clock: FixedClock) -> None:
    bobs = await new_category(uow, clock, user_id=BOB)
    with pytest.raises(NotFound):
        await get_category(uow(), ALICE, bobs.id)
    with pytest.raises(NotFound):
        await run(uow(), update_category, clock, ALICE, bobs.id, {"name": "Mine"})
    with pytest.raises(NotFound):
        await run(uow(), delete_category, clock, ALICE, bobs.id)
    assert await list_categories(uow(), ALICE) == []
    assert await get_category(uow(), BOB, bobs.id) == bobs


async def test_task_can_use_its_owners_category(uow: Uow, clock: FixedClock) -> None:
    work = await new_category(uow, clock)
    assert (await new_task(uow, clock, category_id=work.id)).fields.category_id == work.id


@pytest.mark.parametrize("owner", [BOB, None], ids=["another users category", "no such category"])
async def test_task_cannot_use_a_category_that_is_not_its_owners(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, owner: str | None
) -> None:
    category_id = (await new_category(uow, clock, user_id=owner)).id if owner else uuid4()
    task = await new_task(uow, clock)

    async def refused(change: object) -> None:
        with pytest.raises(ValidationFailed) as raised:
            await change  # type: ignore[misc]
        assert [error.field for error in raised.value.errors] == ["category_id"]

    await refused(new_task(uow, clock, category_id=category_id))
    await refused(run(uow(), patch_task, clock, ALICE, task.id, {"category_id": category_id}))
    await refused(run(uow(), replace_task, clock, ALICE, task.id, TaskFields(title="t", category_id=category_id)))
    assert [t["id"] for t in await all_tasks(views, ALICE)] == [task.id]


async def test_deleting_a_category_clears_it_from_its_tasks(uow: Uow, clock: FixedClock) -> None:
    work = await new_category(uow, clock, name="Work")
    home = await new_category(uow, clock, name="Home")
    at_work = await new_task(uow, clock, title="at work", category_id=work.id)
    at_home = await new_task(uow, clock, title="at home", category_id=home.id)
    clock.advance(timedelta(minutes=1))
    await run(uow(), delete_category, clock, ALICE, work.id)
    cleared = await stored_task(uow, ALICE, at_work.id)
    assert cleared.fields.category_id is None
    assert (cleared.version, cleared.updated_at) == (2, clock.now())
    assert await stored_task(uow, ALICE, at_home.id) == at_home
    with pytest.raises(NotFound):
        await get_category(uow(), ALICE, work.id)


async def test_deleting_an_unknown_category_leaves_every_task_as_it_was(uow: Uow, clock: FixedClock) -> None:
    bobs = await new_category(uow, clock, user_id=BOB)
    bobs_task = await new_task(uow, clock, user_id=BOB, category_id=bobs.id)
    with pytest.raises(NotFound):
        await run(uow(), delete_category, clock, ALICE, bobs.id)
    assert await stored_task(uow, BOB, bobs_task.id) == bobs_task


async def test_category_deletion_and_task_clearing_are_one_unit_of_work(
    uow: Uow, store: InMemoryStore, clock: FixedClock
) -> None:
    work = await new_category(uow, clock)
    task = await new_task(uow, clock, category_id=work.id)

    class FailingCommit(InMemoryUnitOfWork):
        async def commit(self) -> None:
            raise Conflict("simulated failure at commit")

    with pytest.raises(Conflict):
        await run(FailingCommit(store), delete_category, clock, ALICE, work.id)
    assert (await stored_task(uow, ALICE, task.id)).fields.category_id == work.id
    assert await get_category(uow(), ALICE, work.id) == work


async def test_a_category_change_that_changes_nothing_keeps_the_version(uow: Uow, clock: FixedClock) -> None:
    category = await new_category(uow, clock, name="Work")
    clock.advance(timedelta(minutes=1))
    same = await run(uow(), update_category, clock, ALICE, category.id, {"name": "Work"})
    assert same == category


async def test_a_refused_import_lists_at_most_a_hundred_broken_rules(
    uow: Callable[[], InMemoryUnitOfWork], clock: FixedClock
) -> None:
    tasks = [PortableTask(UUID(int=n + 1), TaskFields(" ")) for n in range(ERRORS_MAX + 50)]
    with pytest.raises(ValidationFailed) as refused:
        await imported(uow(), uow(), clock, "alice", AccountDocument(tasks=tasks))
    assert [error.field for error in refused.value.errors] == [f"tasks[{n}].title" for n in range(ERRORS_MAX)]


# The runner's own checks


@pytest.mark.parametrize("key", ["", "k" * (KEY_MAX_LENGTH + 1)])
async def test_an_idempotency_key_empty_or_too_long_runs_nothing(
    uow: Uow, views: InMemoryTaskViews, clock: FixedClock, key: str
) -> None:
    """Whoever drives the runner (REST, MCP, a batch), a key out of bounds is refused before the
    command runs."""
    once = IdempotencyKey(ALICE, key, "fingerprint", timedelta(hours=1))
    with pytest.raises(ValidationFailed):
        await run_once(uow(), clock, once, lambda _: Answer(201, (), b""), create_task, clock, ALICE, TaskFields("T"))
    assert await all_tasks(views, ALICE) == []
