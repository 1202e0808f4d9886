"""In-process fan-out of "this user's data changed" and "this user's reminder fell due": what
wakes the user's event streams; and the doorbell of the process's webhook delivery loop.

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

A reminder is announced once, by the process that claimed it (`ReminderAnnouncer`), and queued
on each subscription of its user (a stream that takes none of them keeps the newest
`REMINDERS_KEPT`).

The doorbell (`ring_outbox`, `outbox_rung`) wakes the delivery loop when a commit wrote to the
outbox: in the process on SQLite, from every process's listener on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence

from todo_core.webhooks import DueReminder

#: The reminders a subscription keeps while its stream does not take them.
REMINDERS_KEPT = 100


class Subscription:
    """One stream's view of one user's changes: the newest sequence number not yet taken."""

    def __init__(self) -> None:
        self._latest: int | None = None
        self._reminders: deque[str] = deque(maxlen=REMINDERS_KEPT)
        self._changed = asyncio.Event()

    def _offer(self, seq: int) -> None:
        if self._latest is None or seq > self._latest:
            self._latest = seq
            self._changed.set()

    def _remind(self, data: str) -> None:
        self._reminders.append(data)
        self._changed.set()

    async def next(self, timeout: float) -> int | None:
        """The newest sequence number announced since the last call, waiting up to `timeout`
        seconds for one or for a reminder (see `reminders`); None if none came."""
        if self._latest is None and not self._reminders:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: see `outbox_rung`
                    await self._changed.wait()
        latest, self._latest = self._latest, None
        self._changed.clear()
        return latest

    def reminders(self) -> list[str]:
        """The reminders announced since the last call (each the data of an `event: reminder`),
        oldest first."""
        taken = list(self._reminders)
        self._reminders.clear()
        return taken


class ChangeBroker:
    """Subscriptions by user, in this process. Not thread-safe: one event loop uses it."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[Subscription]] = defaultdict(set)
        #: The newest number announced, for each user with a subscriber.
        self._announced: dict[str, int] = {}
        self._outbox = asyncio.Event()

    def publish(self, user_id: str, seq: int) -> None:
        """Announce that the user's data changed, up to change `seq` (not again if it was
        announced already, or a newer one was)."""
        subscribers = self._subscribers.get(user_id)
        if not subscribers or seq <= self._announced.get(user_id, -1):
            return
        self._announced[user_id] = seq
        for subscription in subscribers:
            subscription._offer(seq)

    def remind(self, user_id: str, data: str) -> None:
        """Announce one of the user's reminders that fell due (`data`: its stream event's data)."""
        for subscription in self._subscribers.get(user_id, ()):
            subscription._remind(data)

    def ring_outbox(self) -> None:
        """Wake the delivery loop: a commit wrote events, or reminders, to the outbox."""
        self._outbox.set()

    async def outbox_rung(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for `ring_outbox` (or take one made since the last call);
        whether it rang."""
        # Not `asyncio.wait_for`: on Python 3.11 it swallows the task's cancellation when the bell
        # rings in the same turn (it returns instead), and the loop then outlived the shutdown
        # that cancelled it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._outbox.wait()
        rang = self._outbox.is_set()
        self._outbox.clear()
        return rang

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


class BrokerReminderAnnouncer:
    """`ReminderAnnouncer` for one process (SQLite, memory): straight to its broker's streams."""

    def __init__(self, broker: ChangeBroker) -> None:
        self._broker = broker

    async def announce(self, reminders: Sequence[DueReminder]) -> None:
        for reminder in reminders:
            self._broker.remind(reminder.user_id, reminder.stream_data())
