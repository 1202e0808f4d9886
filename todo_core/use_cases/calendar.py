"""Use cases of the calendar: a user's tasks for calendar apps, and the secret links that
serve them without a token (`todo_core.calendar_feed`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from todo_core import calendar_feed
from todo_core.calendar_feed import CalendarFeed, IssuedFeed
from todo_core.clock import Clock
from todo_core.errors import NotFound, TooManyCalendarFeeds
from todo_core.ports import TaskViews, UnitOfWork
from todo_core.query import LIMIT_MAX, Status, TaskQuery
from todo_core.use_cases.categories import list_categories

#: Tasks read per statement: a big account is read in keyset pages, never in one huge query.
CALENDAR_PAGE = LIMIT_MAX


@dataclass(frozen=True, slots=True)
class CalendarTasks:
    """What a calendar shows: the task views (as the list returns them, oldest first) and the
    names of the user's categories by id."""

    tasks: Sequence[object]
    category_names: dict[UUID, str]


async def calendar_tasks(
    views: TaskViews, reader: UnitOfWork, user_id: str, status: Status, *, page_size: int = CALENDAR_PAGE
) -> CalendarTasks:
    """The user's tasks of this status, read `page_size` at a time in the order they were made,
    and the user's category names."""
    tasks: list[object] = []
    query = TaskQuery(status=status, limit=page_size)
    while True:  # each page starts after the last: as many rounds as pages, then the last has no next
        page = await views.list_for_user(user_id, query)
        tasks.extend(page.items)
        if page.next_after is None:
            break
        query = dataclasses.replace(query, after=page.next_after)
    categories = await list_categories(reader, user_id)
    return CalendarTasks(tasks, {category.id: category.fields.name for category in categories})


async def create_feed(uow: UnitOfWork, clock: Clock, user_id: str, *, at_most: int | None = None) -> IssuedFeed:
    """A new subscription link of the user's; its secret is known only to the caller.

    :raises TooManyCalendarFeeds: the user has `at_most` feeds already (two made at the very same
        time may both pass: the cap bounds what one user holds, not to the unit).
    """
    issued = calendar_feed.issue(user_id, clock.now())
    async with uow:
        if at_most is not None and len(await uow.feeds.list_for_user(user_id)) >= at_most:
            raise TooManyCalendarFeeds(at_most)
        await uow.feeds.add(issued.feed)
        await uow.commit()
    return issued


async def list_feeds(reader: UnitOfWork, user_id: str) -> Sequence[CalendarFeed]:
    """The user's subscription links (without their secrets, which are not kept)."""
    async with reader:
        return await reader.feeds.list_for_user(user_id)


async def revoke_feed(uow: UnitOfWork, user_id: str, feed_id: UUID) -> None:
    """Revoke one of the user's links: its URL answers as one that never existed.

    :raises NotFound: the user has no such feed.
    """
    async with uow:
        if not await uow.feeds.remove(user_id, feed_id):
            raise NotFound("calendar feed")
        await uow.commit()


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
