"""Subtasks, manual order and all-day dates, through the use cases on every adapter (memory,
SQLite, PostgreSQL): the tree walks, the sibling queries and the list filters and sorts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import UnitOfWorkFactory, stored_task
from tests.contract.test_task_repository import all_pages, ids
from todo_core import ordering
from todo_core.commands import run
from todo_core.errors import NotFound, PreconditionFailed, ValidationFailed
from todo_core.ports import ChangeFeed, TaskViews
from todo_core.query import Sort, Status, TaskQuery
from todo_core.sync import START, ChangePosition
from todo_core.task import Task, TaskFields
from todo_core.use_cases import tasks as use_cases

NOW = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)  # every write a distinct instant
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def user(new_user: Callable[[], str]) -> str:
    return new_user()


@pytest.fixture
def create(uow_factory: UnitOfWorkFactory, clock: Clock, user: str) -> Callable[..., Any]:
    async def create(title: str, parent: Task | None = None, **fields: Any) -> Task:
        if parent is not None:
            fields["parent_id"] = parent.id
        return await run(uow_factory(), use_cases.create_task, clock, user, TaskFields(title, **fields))

    return create


async def titles_under(task_views: TaskViews, user: str, parent: Task | None) -> list[str]:
    """The titles of a parent's steps (None: the top-level tasks), in the user's order."""
    query = TaskQuery(sort=Sort.parse("position"), limit=2)
    query = dataclasses.replace(query, parent_id=parent.id) if parent else dataclasses.replace(query, top_level=True)
    return [view["title"] for view in await all_pages(task_views, user, query)]


async def test_steps_list_under_their_parent_in_the_order_they_were_added(
    create: Callable[..., Any], task_views: TaskViews, user: str
) -> None:
    review = await create("Weekly review")
    inbox = await create("Clear the inbox", review)
    await create("Archive newsletters", inbox)
    await create("Plan next week", review)
    await create("Groceries")
    assert await titles_under(task_views, user, review) == ["Clear the inbox", "Plan next week"]
    assert await titles_under(task_views, user, inbox) == ["Archive newsletters"]
    assert await titles_under(task_views, user, None) == ["Weekly review", "Groceries"]
    steps = await all_pages(task_views, user, TaskQuery(top_level=False))
    assert sorted(view["title"] for view in steps) == ["Archive newsletters", "Clear the inbox", "Plan next week"]
    everything = await all_pages(task_views, user, TaskQuery())
    assert len(everything) == 5  # without a structure filter, a list is flat


async def test_a_parent_must_be_one_of_the_users_tasks(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, new_user: Callable[[], str]
) -> None:
    someone_elses = await run(uow_factory(), use_cases.create_task, clock, new_user(), TaskFields("Theirs"))
    errors = []
    for parent_id in (someone_elses.id, UUID(int=7)):
        with pytest.raises(ValidationFailed) as refused:
            await create("Mine", parent_id=parent_id)
        errors.append(refused.value.errors)
    assert errors[0] == errors[1]  # another user's task reads as one that does not exist
    assert errors[0][0].field == "parent_id"
    assert errors[0][0].message == "is not one of your tasks"


async def test_a_task_cannot_sit_below_itself(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str
) -> None:
    top = await create("Top")
    middle = await create("Middle", top)
    bottom = await create("Bottom", middle)
    for new_parent in (top, middle, bottom):
        with pytest.raises(ValidationFailed, match="itself or one of its steps"):
            await run(uow_factory(), use_cases.patch_task, clock, user, top.id, {"parent_id": new_parent.id})
        with pytest.raises(ValidationFailed, match="itself or one of its steps"):
            await run(uow_factory(), use_cases.move_task, clock, user, top.id, parent_id=new_parent.id)
    assert (await stored_task(uow_factory, user, top.id)).fields.parent_id is None


async def test_a_task_has_at_most_four_ancestors(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str
) -> None:
    levels = [await create("Level 1")]
    for n in range(2, 6):
        levels.append(await create(f"Level {n}", levels[-1]))
    with pytest.raises(ValidationFailed, match="at most 4 ancestors"):
        await create("Level 6", levels[-1])
    # A subtree moved under another task counts its own levels too.
    other = await create("Other")
    branch = await create("Branch", other)
    await create("Leaf", branch)
    with pytest.raises(ValidationFailed, match="at most 4 ancestors"):  # the leaf would be on level 6
        await run(uow_factory(), use_cases.move_task, clock, user, branch.id, parent_id=levels[3].id)
    with pytest.raises(ValidationFailed, match="at most 4 ancestors"):
        await run(uow_factory(), use_cases.patch_task, clock, user, branch.id, {"parent_id": levels[3].id})
    moved = await run(uow_factory(), use_cases.move_task, clock, user, branch.id, parent_id=levels[2].id)
    assert moved.fields.parent_id == levels[2].id  # the leaf is on level 5


async def test_deleting_a_task_deletes_its_subtree_and_tells_sync(
    create: Callable[..., Any],
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    user: str,
    task_views: TaskViews,
    backend: Any,
) -> None:
    feed: ChangeFeed = backend.feed
    before = (await feed.changes(user, START, 100)).log.seq
    top = await create("Move house")
    boxes = await create("Pack boxes", top)
    kitchen = await create("Kitchen", boxes)
    kept = await create("Keep me")
    after_creates = ChangePosition((await feed.changes(user, START, 100)).log.seq)
    await run(uow_factory(), use_cases.delete_task, clock, user, top.id)
    assert ids(await all_pages(task_views, user, TaskQuery())) == [kept.id]
    page = await feed.changes(user, after_creates, 100)
    assert set(page.deleted_tasks) == {top.id, boxes.id, kitchen.id}
    assert page.log.seq == before + 5  # the three deletions are one change
    with pytest.raises(NotFound):
        await run(uow_factory(), use_cases.delete_task, clock, user, kitchen.id)


async def test_a_stale_if_match_deletes_nothing_of_the_subtree(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str, task_views: TaskViews
) -> None:
    top = await create("Top")
    await create("Step", top)
    with pytest.raises(PreconditionFailed):
        await run(uow_factory(), use_cases.delete_task, clock, user, top.id, if_match=top.version + 1)
    assert len(await all_pages(task_views, user, TaskQuery())) == 2


async def test_completing_a_task_completes_its_open_steps_and_reopening_leaves_them(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str
) -> None:
    trip = await create("Trip")
    passport = await create("Passport", trip)
    photo = await create("Photo", passport)
    tickets = await create("Tickets", trip, completed=True)
    await run(uow_factory(), use_cases.complete_task, clock, user, trip.id, True)
    steps = {task.id: await stored_task(uow_factory, user, task.id) for task in (passport, photo, tickets)}
    assert all(step.fields.completed for step in steps.values())
    assert steps[tickets.id].version == tickets.version  # already done: untouched
    await run(uow_factory(), use_cases.complete_task, clock, user, trip.id, False)
    for step_id in steps:
        assert (await stored_task(uow_factory, user, step_id)).fields.completed


async def test_the_next_occurrence_of_a_repeating_task_gets_fresh_open_copies_of_its_steps(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str, task_views: TaskViews
) -> None:
    review = await create("Weekly review", due_date=date(2026, 3, 27), recurrence="FREQ=WEEKLY", time_zone="UTC")
    inbox = await create("Inbox zero", review)
    await create("Newsletters", inbox)
    await create("Plan the week", review)
    await run(uow_factory(), use_cases.move_task, clock, user, inbox.id, after=None)  # still first
    done = await run(uow_factory(), use_cases.complete_task, clock, user, review.id, True)
    assert done.next_occurrence_id is not None
    following = await stored_task(uow_factory, user, done.next_occurrence_id)
    assert following.fields.due_date == date(2026, 4, 3)
    assert not following.fields.completed
    copies = await all_pages(task_views, user, TaskQuery(parent_id=following.id, sort=Sort.parse("position")))
    assert [copy["title"] for copy in copies] == ["Inbox zero", "Plan the week"]
    assert not any(copy["completed"] for copy in copies)
    assert UUID(copies[0]["id"]) != inbox.id
    nested = await all_pages(task_views, user, TaskQuery(parent_id=UUID(copies[0]["id"])))
    assert [(view["title"], view["completed"]) for view in nested] == [("Newsletters", False)]
    # The week just done keeps its steps, completed.
    old = await all_pages(task_views, user, TaskQuery(parent_id=review.id, status=Status.PENDING))
    assert old == []


async def test_moves_reorder_siblings_writing_the_moved_task_alone(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str, task_views: TaskViews
) -> None:
    a, b, c = [await create(title) for title in "ABC"]
    moved = await run(uow_factory(), use_cases.move_task, clock, user, c.id, after=None)
    assert await titles_under(task_views, user, None) == ["C", "A", "B"]
    assert moved.version == c.version + 1
    await run(uow_factory(), use_cases.move_task, clock, user, a.id, after=b.id)
    assert await titles_under(task_views, user, None) == ["C", "B", "A"]
    await run(uow_factory(), use_cases.move_task, clock, user, c.id, after=b.id)
    assert await titles_under(task_views, user, None) == ["B", "C", "A"]
    assert (await stored_task(uow_factory, user, b.id)).version == b.version  # never renumbered
    # A move to where the task already is changes nothing.
    same = await run(uow_factory(), use_cases.move_task, clock, user, c.id, after=b.id)
    assert same.version == (await stored_task(uow_factory, user, c.id)).version


async def test_a_move_can_change_the_parent_and_keeps_the_steps_below(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str, task_views: TaskViews
) -> None:
    home, work = await create("Home"), await create("Work")
    paint = await create("Paint", home)
    await create("Buy paint", paint)
    call = await create("Call", work)
    moved = await run(uow_factory(), use_cases.move_task, clock, user, paint.id, parent_id=work.id, after=call.id)
    assert moved.fields.parent_id == work.id
    assert await titles_under(task_views, user, work) == ["Call", "Paint"]
    assert await titles_under(task_views, user, home) == []
    assert await titles_under(task_views, user, paint) == ["Buy paint"]
    top = await run(uow_factory(), use_cases.move_task, clock, user, paint.id, parent_id=None, after=home.id)
    assert top.fields.parent_id is None
    assert await titles_under(task_views, user, None) == ["Home", "Paint", "Work"]


async def test_after_must_be_a_sibling_under_the_target_parent(
    create: Callable[..., Any], uow_factory: UnitOfWorkFactory, clock: Clock, user: str
) -> None:
    top, other = await create("Top"), await create("Other")
    step = await create("Step", top)
    for after, message in ((step.id, "itself"), (other.id, "under the parent"), (UUID(int=1), "under the parent")):
        with pytest.raises(ValidationFailed, match=message) as refused:
            await run(uow_factory(), use_cases.move_task, clock, user, step.id, after=after)
        assert refused.value.errors[0].field == "after"
    with pytest.raises(PreconditionFailed):
        await run(uow_factory(), use_cases.move_task, clock, user, step.id, after=None, if_match=step.version + 1)
    with pytest.raises(NotFound):
        await run(uow_factory(), use_cases.move_task, clock, user, UUID(int=2), after=None)


async def test_repeated_moves_to_one_spot_keep_positions_short_rebalancing_rarely(
    create: Callable[..., Any],
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    user: str,
    task_views: TaskViews,
    request: pytest.FixtureRequest,
) -> None:
    # A thousand in memory; enough on SQL for the rebalances to run there too, in seconds.
    moves = 1000 if request.node.callspec.params["backend"] == "memory" else 400
    first, x, y, _last = [await create(title) for title in ("First", "X", "Y", "Last")]
    for n in range(moves):
        # Each move lands between `first` and the task moved just before: the gap halves.
        await run(uow_factory(), use_cases.move_task, clock, user, (x, y)[n % 2].id, after=first.id)
    views = await all_pages(task_views, user, TaskQuery(top_level=True, sort=Sort.parse("position")))
    assert [view["title"] for view in views] == ["First", "Y", "X", "Last"]
    assert max(len(view["position"]) for view in views) <= ordering.POSITION_MAX
    # A move writes one version of the task it moves; a rebalance writes the other one too.
    versions = sum(view["version"] - 1 for view in views)
    rebalances = versions - moves
    assert 1 <= rebalances <= moves // 100


async def test_all_day_tasks_filter_and_sort_at_the_start_of_their_day_in_their_zone(
    create: Callable[..., Any], task_views: TaskViews, user: str
) -> None:
    # Friday 3 April 2026 begins at 2026-04-02T22:00Z in Berlin and at 2026-04-03T07:00Z in Los Angeles.
    berlin = await create("Berlin Friday", due_date=date(2026, 4, 3), time_zone="Europe/Berlin")
    la = await create("LA Friday", due_date=date(2026, 4, 3), time_zone="America/Los_Angeles")
    timed = await create("Timed", due_at=datetime(2026, 4, 3, 0, 0, tzinfo=UTC))
    await create("Undated")
    by_due = await all_pages(task_views, user, TaskQuery(sort=Sort.parse("due_at"), limit=1))
    assert [view["title"] for view in by_due] == ["Berlin Friday", "Timed", "LA Friday", "Undated"]
    by_due_desc = await all_pages(task_views, user, TaskQuery(sort=Sort.parse("-due_at"), limit=3, status=Status.ALL))
    assert [view["title"] for view in by_due_desc] == ["LA Friday", "Timed", "Berlin Friday", "Undated"]
    before = TaskQuery(due_before=datetime(2026, 4, 3, 7, 0, tzinfo=UTC))
    assert ids(await all_pages(task_views, user, before)) == [berlin.id, timed.id]
    after = TaskQuery(due_after=datetime(2026, 4, 3, 7, 0, tzinfo=UTC))
    assert ids(await all_pages(task_views, user, after)) == [la.id]
    shown = (await all_pages(task_views, user, TaskQuery(search="Berlin")))[0]
    assert (shown["due_date"], shown["due_at"]) == ("2026-04-03", None)


async def test_a_task_is_due_at_an_instant_or_on_a_day_not_both(create: Callable[..., Any]) -> None:
    with pytest.raises(ValidationFailed, match="due on a day or at an instant"):
        await create("Both", due_at=NOW, due_date=date(2026, 4, 3))
