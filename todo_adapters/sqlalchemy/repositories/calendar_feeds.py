"""Calendar feeds on SQLAlchemy Core (`todo_core.ports.CalendarFeedRepository`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import BindParameter, bindparam, delete, insert, select

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.tables import calendar_feeds
from todo_core.calendar_feed import CalendarFeed

_USER: BindParameter[str] = bindparam("user_id")


# A feed's columns are named as `CalendarFeed`'s fields.
_FEED_COLUMNS = [calendar_feeds.c[field.name] for field in dataclasses.fields(CalendarFeed)]
_INSERT_FEED = insert(calendar_feeds)
_FEEDS = (
    select(*_FEED_COLUMNS)
    .where(calendar_feeds.c.user_id == _USER)
    .order_by(calendar_feeds.c.created_at, calendar_feeds.c.id)
)
_FEED_BY_HASH = select(*_FEED_COLUMNS).where(
    calendar_feeds.c.user_id == _USER, calendar_feeds.c.secret_hash == bindparam("secret_hash")
)
_DELETE_FEED = delete(calendar_feeds).where(
    calendar_feeds.c.user_id == _USER, calendar_feeds.c.id == bindparam("feed_id")
)


class SqlCalendarFeedRepository:
    """A user's calendar feeds: not synced data, so saving one takes no change number."""

    def __init__(self, executor: Executor) -> None:
        self._sql = executor

    async def add(self, feed: CalendarFeed) -> None:
        await self._sql.run(_INSERT_FEED, dataclasses.asdict(feed))

    async def list_for_user(self, user_id: str) -> Sequence[CalendarFeed]:
        return [CalendarFeed(*row) for row in await self._sql.rows(_FEEDS, {"user_id": user_id})]

    async def find(self, user_id: str, secret_hash: bytes) -> CalendarFeed | None:
        rows = await self._sql.rows(_FEED_BY_HASH, {"user_id": user_id, "secret_hash": secret_hash})
        return CalendarFeed(*rows[0]) if rows else None

    async def remove(self, user_id: str, feed_id: UUID) -> bool:
        return await self._sql.count(_DELETE_FEED, {"user_id": user_id, "feed_id": feed_id}) == 1
