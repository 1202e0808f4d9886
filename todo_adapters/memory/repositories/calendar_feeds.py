"""Calendar feeds in memory (`todo_core.ports.CalendarFeedRepository`)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from todo_adapters.memory.tables import Staging
from todo_core.calendar_feed import CalendarFeed


class InMemoryCalendarFeedRepository:
    def __init__(self, view: Staging) -> None:
        self._view = view

    async def add(self, feed: CalendarFeed) -> None:
        self._view.feeds[(feed.user_id, feed.id)] = feed

    async def list_for_user(self, user_id: str) -> Sequence[CalendarFeed]:
        owned = [feed for (owner, _), feed in self._view.feeds.items() if owner == user_id]
        return sorted(owned, key=lambda feed: (feed.created_at, feed.id))

    async def find(self, user_id: str, secret_hash: bytes) -> CalendarFeed | None:
        found = (f for (owner, _), f in self._view.feeds.items() if owner == user_id and f.secret_hash == secret_hash)
        return next(found, None)

    async def remove(self, user_id: str, feed_id: UUID) -> bool:
        if (user_id, feed_id) not in self._view.feeds:
            return False
        del self._view.feeds[(user_id, feed_id)]
        return True
