"""Services the domain calls that are no repository of a user's rows: the purge of what is
kept only for a while, the sending of webhooks, the announcement of due reminders. (Time and
identity: `todo_core.clock`, `todo_core.identity`.)"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, DueReminder


class Retention(Protocol):
    """What is kept only for a while, for every user: purged in batches, each a short
    transaction of its own, by one process at a time."""

    def exclusively(self) -> AbstractAsyncContextManager[bool]:
        """A block in which this process purges alone: True, no other process of any replica
        holds it meanwhile; False, another does (skip this round). Never waits for it.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def purge_tombstones(self, *, deleted_before: datetime, limit: int) -> int:
        """Forget at most `limit` tombstones of rows deleted before `deleted_before`, oldest
        first, moving the horizon of each user's change log past them, in one transaction;
        return how many.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def purge_keys(self, *, recorded_before: datetime, limit: int) -> int:
        """Forget at most `limit` idempotency keys recorded before `recorded_before`, oldest
        first, in one transaction; return how many.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def purge_deliveries(self, *, finished_before: datetime, limit: int) -> int:
        """Forget at most `limit` webhook deliveries that were delivered or given up before
        `finished_before` (never a pending one), oldest first, in one transaction; return how many.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class WebhookDestinations(Protocol):
    async def refusal(self, url: str) -> str | None:
        """Why events may not be sent to this URL (not http(s), a host that resolves to a
        private, loopback, link-local, multicast or metadata address...), or None."""
        ...


class WebhookSender(Protocol):
    async def send(self, claimed: ClaimedDelivery, timestamp: int) -> AttemptOutcome:
        """POST the delivery's body, signed, to its endpoint (checked again); what came back.
        Never raises for what the receiver or the network does."""
        ...


class ReminderAnnouncer(Protocol):
    async def announce(self, reminders: Sequence[DueReminder]) -> None:
        """Tell the event streams of the reminders' users, in every process, that they fell due
        (after the claim committed: an announcement may be lost, never made twice). Never raises."""
        ...
