"""The repository contract: one behaviour, checked on every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import UnitOfWorkFactory
from todo_core.category import Category, CategoryFields
from todo_core.errors import Conflict
from todo_core.ports import TaskViews
from todo_core.query import Sort, SortField, Status, TaskQuery
from todo_core.task import Priority, Task, TaskFields
from todo_core.views import ViewPage, instant_text, task_view

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_task(user_id: str, title: str = "Task", *, at: datetime = NOW, **fields: object) -> Task:
    return Task.new(user_id, TaskFields(title=title, **fields).validated(), at)  # type: ignore[arg-type]


async def add(uow_factory: UnitOfWorkFactory, *tasks: Task) -> None:
    async with uow_factory() as uow:
        for task in tasks:
            await uow.tasks.add(task)
        await uow.commit()


def as_json(views: Sequence[object]) -> list[dict[str, Any]]:
    """Views as a client receives them: whatever form an adapter returns, serialized (instants
    as responses write them) and parsed."""
    text = orjson.dumps(list(views), default=_wire_value, option=orjson.OPT_PASSTHROUGH_DATETIME)
    loaded: list[dict[str, Any]] = orjson.loads(text)
    return loaded


def _wire_value(value: object) -> str:
    if isinstance(value, datetime):
        return instant_text(value)
    assert isinstance(value, date), value
    return value.isoformat()


async def page(task_views: TaskViews, user_id: str, query: TaskQuery) -> ViewPage:
    return await task_views.list_for_user(user_id, query)


async def all_pages(task_views: TaskViews, user_id: str, query: TaskQuery) -> list[dict[str, Any]]:
    """Every task the query selects, as JSON, fetched page by page (bounded)."""
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        result = await page(task_views, user_id, query)
        seen.extend(as_json(result.items))
        if result.next_after is None:
            return seen
        query = dataclasses.replace(query, after=result.next_after)
    raise AssertionError("paging did not end")


def ids(tasks: Sequence[Task | dict[str, Any]]) -> list[UUID]:
    return [task.id if isinstance(task, Task) else UUID(task["id"]) for task in tasks]


async def test_a_task_reads_back_exactly_as_added(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(
        user,
        "Pay rent",
        description="Ünïcödé ✓ description",
        priority=Priority.HIGH,
        due_at=NOW + timedelta(days=1, microseconds=123),
        remind_at=NOW + timedelta(hours=20, microseconds=120_000),  # written ".12": no trailing zeros
        recurrence="FREQ=MONTHLY;BYMONTHDAY=1",
        time_zone="America/Argentina/ComodRivadavia",  # the longest IANA name
        tags=("Home", "money"),
    )
    await add(uow_factory, task)
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) == task
    # The read side shows the same task, in the one shape derived from the entity.
    listed = await task_views.list_for_user(user, TaskQuery())
    found = await task_views.get(user, task.id)
    assert found is not None and found.version == task.version
    assert as_json([*listed.items, found.view]) == as_json([task_view(task)] * 2)
    assert as_json([found.view])[0]["user_id"] == user  # a task names its owner


async def test_another_users_task_is_invisible(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    owner, stranger = new_user(), new_user()
    task = make_task(owner)
    await add(uow_factory, task)
    async with uow_factory() as uow:
        assert await uow.tasks.get(stranger, task.id) is None
        assert (await task_views.list_for_user(stranger, TaskQuery())).items == []
        assert await task_views.get(stranger, task.id) is None
        assert await uow.tasks.remove(stranger, task.id, NOW) is False
        assert await uow.tasks.tag_counts(stranger) == []
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.get(owner, task.id) == task


async def test_work_not_committed_is_rolled_back(uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]) -> None:
    user = new_user()
    task = make_task(user)
    async with uow_factory() as uow:
        await uow.tasks.add(task)
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) is None


async def test_work_not_committed_is_rolled_back_after_reading_in_it(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(user)
    async with uow_factory() as uow:
        await uow.tasks.add(task)
        assert await uow.tasks.get(user, task.id) == task  # PostgreSQL: a result fetched in the pipeline
    for _ in range(10):  # every connection of the pool
        async with uow_factory() as uow:
            assert await uow.tasks.get(user, task.id) is None


async def test_update_replaces_the_task_read(uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]) -> None:
    user = new_user()
    task = make_task(user, tags=("a",))
    await add(uow_factory, task)
    changed = task.with_fields(dataclasses.replace(task.fields, title="Renamed", tags=("b", "C")), NOW)
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) == task
        await uow.tasks.update(changed)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) == changed
        assert await uow.tasks.tag_counts(user) == [("b", 1), ("C", 1)]


async def test_tags_follow_every_update_of_a_task_read_in_the_same_unit_of_work(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(user, tags=("old",))
    await add(uow_factory, task)
    async with uow_factory() as uow:
        read = await uow.tasks.get(user, task.id)
        assert read is not None
        renamed = read.with_fields(dataclasses.replace(read.fields, title="Renamed"), NOW)
        await uow.tasks.update(renamed)
        retagged = renamed.with_fields(dataclasses.replace(renamed.fields, tags=("new",)), NOW)
        await uow.tasks.update(retagged)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.tag_counts(user) == [("new", 1)]
    assert ids(as_json((await task_views.list_for_user(user, TaskQuery(tags=("new",)))).items)) == [task.id]
    assert (await task_views.list_for_user(user, TaskQuery(tags=("old",)))).items == []


async def test_tags_stay_right_when_a_task_is_removed_and_added_again_in_one_unit_of_work(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(user, tags=("a",))
    await add(uow_factory, task)
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) == task
        await uow.tasks.remove(user, task.id, NOW)
        again = dataclasses.replace(task, fields=dataclasses.replace(task.fields, tags=("b",)))
        await uow.tasks.add(again)
        await uow.tasks.update(again.with_fields(dataclasses.replace(again.fields, tags=("a",)), NOW))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.tag_counts(user) == [("a", 1)]


async def test_remove_deletes_the_task_and_its_tags(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    task = make_task(user, tags=("x",))
    await add(uow_factory, task)
    async with uow_factory() as uow:
        assert await uow.tasks.remove(user, task.id, NOW) is True
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.get(user, task.id) is None
        assert await uow.tasks.tag_counts(user) == []


async def test_the_task_count_follows_every_add_remove_rollback_and_erasure(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    """What the cap on a user's tasks reads: exactly the tasks the user has, however they came
    and went (the SQL adapters keep a count beside the user's change number instead of counting)."""
    user, other = new_user(), new_user()
    first, second, third = (make_task(user, f"Task {n}") for n in range(3))
    await add(uow_factory, first, second)
    async with uow_factory() as uow:
        await uow.tasks.add_many([third, make_task(other), make_task(other)])
        assert await uow.tasks.count_for_user(user, up_to=100) == 3  # this unit of work's own adds count
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.count_for_user(user, up_to=100) == 3
        assert await uow.tasks.count_for_user(user, up_to=2) == 2
        assert await uow.tasks.count_for_user(other, up_to=100) == 2
        assert await uow.tasks.count_for_user(new_user(), up_to=100) == 0
        assert await uow.tasks.remove(user, first.id, NOW) is True
        assert await uow.tasks.remove(user, first.id, NOW) is False  # gone already: not counted twice
        await uow.commit()
    async with uow_factory() as uow:  # not committed: neither the task nor its count stays
        await uow.tasks.add(make_task(user))
        assert await uow.tasks.remove(user, second.id, NOW) is True
    async with uow_factory() as uow:
        assert await uow.tasks.count_for_user(user, up_to=100) == 2
        await uow.account.erase(user)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.count_for_user(user, up_to=100) == 0
        assert await uow.tasks.count_for_user(other, up_to=100) == 2
        await uow.tasks.add(make_task(user, "A fresh start"))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.tasks.count_for_user(user, up_to=100) == 1


async def test_tag_counts_fold_case_and_rank_by_use(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    await add(
        uow_factory,
        make_task(user, tags=("work", "Home")),
        make_task(user, tags=("Work",)),
        make_task(user, tags=("errands", "work")),
    )
    async with uow_factory() as uow:
        assert await uow.tasks.tag_counts(user) == [("Work", 3), ("errands", 1), ("Home", 1)]


async def test_due_reminders_are_open_tasks_soonest_first(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    later = make_task(user, "later", remind_at=NOW - timedelta(minutes=1))
    sooner = make_task(user, "sooner", remind_at=NOW - timedelta(hours=1))
    done = make_task(user, "done", remind_at=NOW - timedelta(hours=2), completed=True)
    future = make_task(user, "future", remind_at=NOW + timedelta(minutes=1))
    await add(uow_factory, later, sooner, done, future, make_task(user, "no reminder"))
    async with uow_factory() as uow:
        assert ids(await uow.tasks.due_reminders(user, NOW, 10)) == [sooner.id, later.id]
        assert ids(await uow.tasks.due_reminders(user, NOW, 1)) == [sooner.id]


async def test_clearing_a_category_takes_it_off_only_that_users_tasks(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    category = Category.new(user, CategoryFields("Work"), NOW)
    tagged = make_task(user, category_id=category.id)
    others = make_task(other, category_id=category.id)  # same id, another user: must stay
    async with uow_factory() as uow:
        await uow.categories.add(category)
        await uow.tasks.add(tagged)
        await uow.tasks.add(others)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.tasks.clear_category(user, category.id, NOW + timedelta(minutes=1))
        await uow.commit()
    async with uow_factory() as uow:
        cleared = await uow.tasks.get(user, tagged.id)
        assert cleared is not None
        assert cleared.fields.category_id is None
        assert cleared.version == 2
        assert cleared.updated_at == NOW + timedelta(minutes=1)
        untouched = await uow.tasks.get(other, others.id)
        assert untouched is not None and untouched.fields.category_id == category.id


async def test_category_names_are_unique_per_user_in_any_case(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.categories.add(Category.new(user, CategoryFields("Work"), NOW))
        await uow.categories.add(Category.new(other, CategoryFields("work"), NOW))
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.categories.add(Category.new(user, CategoryFields("WORK"), NOW))
    async with uow_factory() as uow:
        names = [category.fields.name for category in await uow.categories.list_for_user(user)]
        assert names == ["Work"]


async def test_categories_list_by_name_and_update_and_remove(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    b, a = Category.new(user, CategoryFields("beta"), NOW), Category.new(user, CategoryFields("Alpha", "#00ff00"), NOW)
    async with uow_factory() as uow:
        await uow.categories.add(b)
        await uow.categories.add(a)
        await uow.commit()
    renamed = b.with_fields(CategoryFields("Gamma"), NOW)
    async with uow_factory() as uow:
        assert await uow.categories.get(user, b.id) == b
        await uow.categories.update(renamed)
        assert await uow.categories.remove(user, a.id, NOW) is True
        await uow.commit()
    async with uow_factory() as uow:
        assert list(await uow.categories.list_for_user(user)) == [renamed]
        assert await uow.categories.get(user, a.id) is None


# --- Filters -------------------------------------------------------------------------------


@pytest.fixture
async def filter_set(uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]) -> tuple[str, dict[str, Task]]:
    user = new_user()
    tasks = {
        "milk": make_task(user, "Buy milk", tags=("Shopping", "home"), priority=Priority.LOW, due_at=NOW),
        "report": make_task(
            user,
            "Write REPORT",
            description="quarterly numbers",
            priority=Priority.HIGH,
            due_at=NOW + timedelta(days=2),
        ),
        "done": make_task(user, "Done thing", completed=True, tags=("home",)),
        "percent": make_task(user, "100% literal_match", priority=Priority.MEDIUM),
        "accent": make_task(user, "Élan vital", description="ÜBER"),
    }
    # Distinct creation times, so the default order (created_at) is the order written here.
    staggered = {
        name: dataclasses.replace(task, created_at=NOW + timedelta(seconds=n))
        for n, (name, task) in enumerate(tasks.items())
    }
    await add(uow_factory, *staggered.values())
    return user, staggered


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TaskQuery(), ["milk", "report", "done", "percent", "accent"]),
        (TaskQuery(status=Status.PENDING), ["milk", "report", "percent", "accent"]),
        (TaskQuery(status=Status.COMPLETED), ["done"]),
        (TaskQuery(priorities=frozenset({Priority.HIGH, Priority.LOW})), ["milk", "report"]),
        (TaskQuery(tags=("HOME",)), ["milk", "done"]),
        (TaskQuery(tags=("home", "shopping")), ["milk"]),
        (TaskQuery(tags=("home", "nothing")), []),
        (TaskQuery(due_before=NOW + timedelta(days=1)), ["milk"]),
        (TaskQuery(due_before=NOW), []),
        (TaskQuery(due_after=NOW + timedelta(days=2)), ["report"]),
        (TaskQuery(search="report"), ["report"]),
        (TaskQuery(search="NUMBERS"), ["report"]),
        (TaskQuery(search="%"), ["percent"]),
        (TaskQuery(search="l_m"), ["percent"]),
        (TaskQuery(search="élan"), ["accent"]),
        (TaskQuery(search="über"), ["accent"]),
    ],
    ids=lambda value: str(value) if isinstance(value, list) else "",
)
async def test_filters_select_exactly_the_matching_tasks(
    uow_factory: UnitOfWorkFactory,
    task_views: TaskViews,
    filter_set: tuple[str, dict[str, Task]],
    query: TaskQuery,
    expected: list[str],
) -> None:
    user, tasks = filter_set
    found = await all_pages(task_views, user, query)
    assert ids(found) == [tasks[name].id for name in expected]


async def test_completed_since_selects_the_tasks_completed_from_that_instant(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()

    def completed(title: str, at: datetime, *, changed: datetime | None = None) -> Task:
        task = make_task(user, title, completed=True, at=at)
        return dataclasses.replace(task, updated_at=changed or at)

    tasks = [
        completed("two days ago", NOW - timedelta(days=2)),
        completed("two days ago, edited since", NOW - timedelta(days=2), changed=NOW),
        completed("at the instant", NOW - timedelta(days=1)),
        completed("since", NOW),
        make_task(user, "open", at=NOW),
    ]
    await add(uow_factory, *tasks)
    query = TaskQuery(completed_since=NOW - timedelta(days=1), sort=Sort(SortField.UPDATED_AT, descending=True))
    assert [view["title"] for view in await all_pages(task_views, user, query)] == ["since", "at the instant"]


async def test_category_filter(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    category = Category.new(user, CategoryFields("Work"), NOW)
    inside = make_task(user, category_id=category.id)
    await add(uow_factory, inside, make_task(user))
    found = await all_pages(task_views, user, TaskQuery(category_id=category.id))
    assert ids(found) == [inside.id]


# --- Sorting and keyset paging --------------------------------------------------------------

PRIORITIES = list(Priority)
ZONES = ["UTC", "Europe/Berlin", "Pacific/Kiritimati", "America/Los_Angeles"]
POSITIONS = ["a0", "a0V", "a1", "Zz", "a1"]  # repeats: siblings of different parents share positions
TITLES = ["apple", "Banana", "banana", "cherry", "Äpfel", "zebra", "10", "9"]


@st.composite
def task_specs(draw: st.DrawFn) -> list[dict[str, object]]:
    count = draw(st.integers(min_value=0, max_value=14))
    return [
        {
            "title": draw(st.sampled_from(TITLES)),
            "priority": draw(st.sampled_from(PRIORITIES)),
            # Instants, and all-day dates (due at the start of their day in the task's zone).
            "due": draw(
                st.none()
                | st.sampled_from([NOW, NOW + timedelta(days=1), NOW - timedelta(days=1)])
                | st.sampled_from([date(2026, 3, 1), date(2026, 3, 2)])
            ),
            "time_zone": draw(st.sampled_from(ZONES)),
            "completed": draw(st.booleans()),
            "created": draw(st.integers(min_value=0, max_value=3)),
            "position": draw(st.sampled_from(POSITIONS)),
            "is_step": draw(st.booleans()),
        }
        for _ in range(count)
    ]


@given(
    specs=task_specs(),
    sort=st.sampled_from([str(Sort(field, d)) for field in SortField for d in (False, True)]),
    limit=st.integers(min_value=1, max_value=5),
    status=st.sampled_from(list(Status)),
    top_level=st.sampled_from([None, True, False]),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_paging_returns_the_filtered_sorted_set_exactly_once(
    uow_factory: UnitOfWorkFactory,
    task_views: TaskViews,
    new_user: Callable[[], str],
    specs: list[dict[str, object]],
    sort: str,
    limit: int,
    status: Status,
    top_level: bool | None,
) -> None:
    user = new_user()
    parent = make_task(user, "Parent", at=NOW - timedelta(days=1))
    tasks = [parent]
    for spec in specs:
        due = spec["due"]
        task = make_task(
            user,
            str(spec["title"]),
            at=NOW + timedelta(seconds=int(spec["created"])),  # type: ignore[call-overload]
            priority=spec["priority"],
            due_at=due if isinstance(due, datetime) else None,
            due_date=due if not isinstance(due, datetime) else None,
            time_zone=spec["time_zone"],
            completed=spec["completed"],
            parent_id=parent.id if spec["is_step"] else None,
        )
        tasks.append(dataclasses.replace(task, position=str(spec["position"])))
    await add(uow_factory, *tasks)
    query = TaskQuery(status=status, sort=Sort.parse(sort), limit=limit, top_level=top_level)
    expected = sorted((t for t in tasks if query.matches(t)), key=query.sort_key, reverse=query.sort.descending)
    assert ids(await all_pages(task_views, user, query)) == ids(expected)


async def test_paging_neither_repeats_nor_skips_while_tasks_come_and_go(
    uow_factory: UnitOfWorkFactory, task_views: TaskViews, new_user: Callable[[], str]
) -> None:
    user = new_user()
    tasks = [make_task(user, f"task {n:02}", at=NOW + timedelta(seconds=n)) for n in range(10)]
    await add(uow_factory, *tasks)
    query = TaskQuery(sort=Sort.parse("title"), limit=3)
    first = await page(task_views, user, query)
    # Between pages: one already-seen task is deleted, one unseen is deleted, new ones arrive.
    async with uow_factory() as uow:
        await uow.tasks.remove(user, tasks[0].id, NOW)
        await uow.tasks.remove(user, tasks[5].id, NOW)
        await uow.tasks.add(make_task(user, "task 00a"))  # sorts before the cursor: not seen
        await uow.tasks.add(make_task(user, "task 07a"))  # sorts after it: seen
        await uow.commit()
    rest = await all_pages(task_views, user, dataclasses.replace(query, after=first.next_after))
    titles = [task["title"] for task in [*as_json(first.items), *rest]]
    assert titles == [
        "task 00",
        "task 01",
        "task 02",
        "task 03",
        "task 04",
        "task 06",
        "task 07",
        "task 07a",
        "task 08",
        "task 09",
    ]


@pytest.mark.parametrize("sort", [f"{sign}{field.value}" for field in SortField for sign in ("", "-")])
@pytest.mark.parametrize("filters", [{"tags": ("x",)}, {"search": "match"}], ids=["tag", "search"])
async def test_filtered_lists_page_in_every_order(
    uow_factory: UnitOfWorkFactory,
    task_views: TaskViews,
    new_user: Callable[[], str],
    sort: str,
    filters: dict[str, object],
) -> None:
    user = new_user()
    tasks = [
        make_task(
            user,
            f"{'match' if n % 4 else 'other'} {n % 5}",
            at=NOW + timedelta(seconds=n % 7),
            tags=("x",) if n % 3 else ("y",),
            priority=PRIORITIES[n % 4],
            due_at=None if n % 5 == 0 else NOW + timedelta(days=n % 4),
        )
        for n in range(30)
    ]
    await add(uow_factory, *tasks)
    query = TaskQuery(sort=Sort.parse(sort), limit=4, **filters)  # type: ignore[arg-type]
    expected = sorted((t for t in tasks if query.matches(t)), key=query.sort_key, reverse=query.sort.descending)
    assert ids(await all_pages(task_views, user, query)) == ids(expected)
