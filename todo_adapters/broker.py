"""In-process fan-out of "this user's data changed": what wakes the user's event streams.

A unit of work that commits a change of a user's data announces the user's new change
sequence number. On SQLite and in memory it publishes here directly, after the commit; on
PostgreSQL the transaction sends `NOTIFY` instead, and each process's one listening
connection publishes what it hears here (so a change made by any process reaches the streams
of every process).

A subscriber keeps only the newest number: a stream that falls behind skips to the latest
change instead of queueing every one it missed. The broker remembers the newest number it
announced for each user with a subscriber, and announces no number twice: announcements may come
more than once and out of order (PostgreSQL's are sent after commit, and a listener catching up
announces numbers again) without waking a stream for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator


class Subscription:
    """One stream's view of one user's changes: the newest sequence number not yet taken."""

    def __init__(self) -> None:
        self._latest: int | None = None
        self._changed = asyncio.Event()

    def _offer(self, seq: int) -> None:
        if self._latest is None or seq > self._latest:
            self._latest = seq
            self._changed.set()

    async def next(self, timeout: float) -> int | None:
        """The newest sequence number announced since the last call, waiting up to `timeout`
        seconds for one; None if none came."""
        if self._latest is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        latest, self._latest = self._latest, None
        self._changed.clear()
        return latest


class ChangeBroker:
    """Subscriptions by user, in this process. Not thread-safe: one event loop uses it."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)
        #: The newest number announced, for each user with a subscriber.
        self._announced: dict[str, int] = {}

    def publish(self, user_id: str, seq: int) -> None:
        """Announce that the user's data changed, up to change `seq` (not again if it was
        announced already, or a newer one was)."""
        subscribers = self._subscribers.get(user_id)
        if not subscribers or seq <= self._announced.get(user_id, -1):
            return
        self._announced[user_id] = seq
        for subscription in subscribers:
            subscription._offer(seq)

    @contextlib.contextmanager
    def subscribe(self, user_id: str) -> Iterator[Subscription]:
        """A subscription to the user's changes, for the block."""
        subscription = Subscription()
        self._subscribers[user_id].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers[user_id]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[user_id]
                self._announced.pop(user_id, None)

    def subscriptions_of(self, user_id: str) -> int:
        """How many subscriptions the user has open in this process."""
        return len(self._subscribers.get(user_id, ()))

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are open (for metrics and tests)."""
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    @property
    def users(self) -> list[str]:
        """The users with at least one open subscription."""
        return list(self._subscribers)
