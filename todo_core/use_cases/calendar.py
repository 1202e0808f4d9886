"""Use cases of the calendar: a user's tasks for calendar apps, and the secret links that
serve them without a token (`todo_core.calendar_feed`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from todo_core import calendar_feed
from todo_core.calendar_feed import CalendarFeed, IssuedFeed
from todo_core.clock import Clock
from todo_core.errors import NotFound, TooManyCalendarFeeds
from todo_core.ports import ChangeFeed, TaskViews, UnitOfWork
from todo_core.query import LIMIT_MAX, Sort, SortField, Status, TaskQuery
from todo_core.use_cases.categories import list_categories

#: Tasks read per statement: a big account is read in keyset pages, never in one huge query.
CALENDAR_PAGE = LIMIT_MAX
#: The most VTODOs one calendar holds (about 0.5 KB each): a 2,000-task calendar is ~1 MB.
CALENDAR_MAX_TASKS = 2000
#: Completed tasks are shown for this many days after their completion, then left out.
CALENDAR_COMPLETED_DAYS = 30


@dataclass(frozen=True, slots=True)
class CalendarBounds:
    """How much of a user's tasks a calendar holds: at most `max_tasks` VTODOs, and of the
    completed tasks only those completed in the last `completed_days` days (counted in whole UTC
    days, so that the calendar changes at most once a day for want of a change of the user's)."""

    max_tasks: int = CALENDAR_MAX_TASKS
    completed_days: int = CALENDAR_COMPLETED_DAYS


@dataclass(frozen=True, slots=True)
class CalendarSelection:
    """Which of a user's tasks one calendar shows, everything it depends on besides the user's
    data: the open tasks (unless `status` is COMPLETED), the tasks completed since
    `completed_since` (None: none), at most `max_tasks` in all.

    When there are more, the open tasks come first, soonest due first (undated ones last, in the
    order they were made); then the completed ones, most recently changed first."""

    status: Status
    completed_since: datetime | None
    max_tasks: int


def calendar_selection(status: Status, bounds: CalendarBounds, now: datetime) -> CalendarSelection:
    """What a calendar of tasks of this status shows today (`now`)."""
    since = None
    if status is not Status.PENDING:
        first_day = now.astimezone(UTC).date() - timedelta(days=bounds.completed_days)
        since = datetime.combine(first_day, time(), UTC)
    return CalendarSelection(status, since, bounds.max_tasks)


@dataclass(frozen=True, slots=True)
class CalendarTasks:
    """What a calendar shows: the task views (in the order of `CalendarSelection`) and the
    names of the user's categories by id."""

    tasks: Sequence[object]
    category_names: dict[UUID, str]


async def change_number(feed: ChangeFeed, user_id: str) -> int:
    """The number of the user's latest change: every calendar of the user's stays the same
    until it moves (categories and tasks are what a calendar shows, and each of their changes
    takes a number), so it identifies the calendar without reading it.

    :raises StorageUnavailable: the store cannot be reached.
    """
    return await feed.change_number(user_id)


async def calendar_tasks(
    views: TaskViews, reader: UnitOfWork, user_id: str, selection: CalendarSelection, *, page_size: int = CALENDAR_PAGE
) -> CalendarTasks:
    """The user's tasks that the selection shows, read `page_size` at a time (never more than
    the selection's bound, and one page), and the user's category names."""
    tasks: list[object] = []
    if selection.status is not Status.COMPLETED:
        query = TaskQuery(status=Status.PENDING, sort=Sort(SortField.DUE_AT))
        await _read(views, user_id, query, selection.max_tasks, page_size, tasks)
    if selection.completed_since is not None:
        query = TaskQuery(
            status=Status.COMPLETED,
            completed_since=selection.completed_since,
            sort=Sort(SortField.UPDATED_AT, descending=True),
        )
        await _read(views, user_id, query, selection.max_tasks, page_size, tasks)
    categories = await list_categories(reader, user_id)
    return CalendarTasks(tasks, {category.id: category.fields.name for category in categories})


async def _read(
    views: TaskViews, user_id: str, query: TaskQuery, bound: int, page_size: int, into: list[object]
) -> None:
    """Append the query's tasks to `into` until it holds `bound` of them, or none are left."""
    while len(into) < bound:  # each page starts after the last; a page without a next is the last
        query = dataclasses.replace(query, limit=min(page_size, bound - len(into)))
        page = await views.list_for_user(user_id, query)
        into.extend(page.items)
        if page.next_after is None:
            return
        query = dataclasses.replace(query, after=page.next_after)


async def create_feed(uow: UnitOfWork, clock: Clock, user_id: str, *, at_most: int | None = None) -> IssuedFeed:
    """A new subscription link of the user's; its secret is known only to the caller.

    :raises TooManyCalendarFeeds: the user has `at_most` feeds already (two made at the very same
        time may both pass: the cap bounds what one user holds, not to the unit).
    """
    if at_most is not None and len(await uow.feeds.list_for_user(user_id)) >= at_most:
        raise TooManyCalendarFeeds(at_most)
    issued = calendar_feed.issue(user_id, clock.now())
    await uow.feeds.add(issued.feed)
    return issued


async def list_feeds(reader: UnitOfWork, user_id: str) -> Sequence[CalendarFeed]:
    """The user's subscription links (without their secrets, which are not kept)."""
    async with reader:
        return await reader.feeds.list_for_user(user_id)


async def revoke_feed(uow: UnitOfWork, user_id: str, feed_id: UUID) -> None:
    """Revoke one of the user's links: its URL answers as one that never existed.

    :raises NotFound: the user has no such feed.
    """
    if not await uow.feeds.remove(user_id, feed_id):
        raise NotFound("calendar feed")


async def feed_owner(reader: UnitOfWork, secret: str) -> str:
    """The user whose feed the secret opens. Every secret costs one lookup, found or not.

    :raises NotFound: no feed has this secret (never had, revoked, or not a secret of ours).
    """
    owner = calendar_feed.owner_of(secret)
    async with reader:
        found = await reader.feeds.find(owner, calendar_feed.secret_hash(secret))
    if not calendar_feed.matches(found, secret):
        raise NotFound("calendar feed")
    return owner
