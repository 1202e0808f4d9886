"""The repositories a command stages its changes in, one per kind of row a user owns. A unit of
work hands them out (`todo_core.ports.unit_of_work`); none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from todo_core.calendar_feed import CalendarFeed
from todo_core.category import Category
from todo_core.idempotency import Answer, Recorded
from todo_core.task import Task
from todo_core.user_settings import UserSettings
from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, Delivery, DueReminder, Webhook


class TaskRepository(Protocol):
    async def get(self, user_id: str, task_id: UUID) -> Task | None:
        """Return the user's task with this id, or None if the user has none.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def ancestors(self, user_id: str, task_id: UUID) -> Sequence[UUID]:
        """Return the ids of the user's task's parent, its parent's parent and so on, nearest
        first (empty for a top-level task or one the user does not have).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def descendants(self, user_id: str, task_id: UUID) -> Sequence[Task]:
        """Return every task below the user's task (its steps, their steps, ...), each parent
        before its children and siblings by position.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def children(
        self,
        user_id: str,
        parent_id: UUID | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Task]:
        """Return the user's tasks directly under `parent_id` (None: the top-level tasks) by
        position, only those after the position `after` when given, at most `limit`.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def count_for_user(self, user_id: str, *, up_to: int) -> int:
        """Return how many tasks the user has, counting no further than `up_to` (what a cap
        needs to know, at a cost bounded by the cap rather than by the account).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def last_position(self, user_id: str, parent_id: UUID | None) -> str | None:
        """Return the greatest position among the user's tasks under `parent_id` (None: the
        top-level tasks), or None if there is none.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def add(self, task: Task) -> None:
        """Stage a new task.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def add_many(self, new: Sequence[Task]) -> None:
        """Stage new tasks, as `add` each, in as few statements as the store allows (an
        import's tasks: a few hundred at a time).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def update(self, task: Task) -> None:
        """Stage a task's new version. Only for a task read in this unit of work: the user's
        turn (see `UnitOfWork`), not this method, keeps it from overwriting a concurrent change.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def remove(self, user_id: str, task_id: UUID, now: datetime, *, version: int | None = None) -> bool:
        """Stage the deletion of the user's task (only at `version`, when given), leaving its
        tombstone (deleted `now`) for sync; return False if the user has no such task at that
        version.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        """Take the category off every task of the user that has it (a new version of each).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        """Return each of the user's tags (as first written) with its number of tasks,
        most used first, then alphabetically.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        """Return the user's open tasks whose reminder is at or before `until`, soonest first.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class CategoryRepository(Protocol):
    async def get(self, user_id: str, category_id: UUID) -> Category | None:
        """Return the user's category with this id, or None.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        """Return all of the user's categories, by name (case-insensitive).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def add(self, category: Category) -> None:
        """Stage a new category.

        :raises Conflict: the user already has a category of that name (in any case).
        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def update(self, category: Category) -> None:
        """Stage a category's new version. Only for a category read in this unit of work: the
        user's turn (see `UnitOfWork`), not this method, keeps it from overwriting a concurrent
        change.

        :raises Conflict: the user already has another category of that name (in any case).
        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def remove(self, user_id: str, category_id: UUID, now: datetime) -> bool:
        """Stage the deletion of the user's category, leaving its tombstone (deleted `now`) for
        sync; False if there is none.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class SettingsRepository(Protocol):
    """A user's settings (`UserSettings`). They are not synced data: saving them takes no
    change number, and `/changes` does not carry them (each task carries its own zone)."""

    async def get(self, user_id: str) -> UserSettings:
        """Return the user's settings, or the defaults if the user never saved any.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def put(self, user_id: str, settings: UserSettings) -> None:
        """Stage the user's (validated) settings, replacing any saved before.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class CalendarFeedRepository(Protocol):
    """A user's calendar subscription links (`CalendarFeed`). Not synced data: saving or
    revoking one takes no change number."""

    async def add(self, feed: CalendarFeed) -> None:
        """Stage a new feed.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def list_for_user(self, user_id: str) -> Sequence[CalendarFeed]:
        """Return the user's feeds, oldest first.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def find(self, user_id: str, secret_hash: bytes) -> CalendarFeed | None:
        """Return the user's feed whose secret has this hash, or None (also for a revoked one).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def remove(self, user_id: str, feed_id: UUID) -> bool:
        """Stage the revocation (deletion) of the user's feed; False if the user has no such feed.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class AccountEraser(Protocol):
    """Forgetting a user altogether."""

    async def erase(self, user_id: str) -> None:
        """Stage the deletion of every row the store holds for the user: tasks and their tags,
        categories, settings, calendar feeds, idempotency keys, tombstones. The user's change
        counter stays, moved on by one with its horizon at the new number, so that every sync
        token issued before is refused (410) rather than answered from the empty account.
        Like any change, it waits for the user's units of work that change data to end.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class IdempotencyKeys(Protocol):
    async def claim(
        self, user_id: str, key: str, fingerprint: str, *, now: datetime, expired_before: datetime
    ) -> Recorded | None:
        """Take the user's key for this unit of work, or return what it recorded. A key
        recorded before `expired_before` counts as never used. Waits for a unit of work that
        took the same key to end, and then sees what it recorded (nothing, if it rolled back).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def record(self, user_id: str, key: str, answer: Answer) -> None:
        """Stage what the command run under the key (claimed in this unit of work) answered.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class WebhookRepository(Protocol):
    """A user's webhook endpoints and the outbox of their deliveries. Not synced data: saving
    one takes no change number."""

    async def add(self, webhook: Webhook) -> None:
        """Stage a new endpoint.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def list_for_user(self, user_id: str) -> Sequence[Webhook]:
        """Return the user's endpoints, oldest first.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def get(self, user_id: str, webhook_id: UUID) -> Webhook | None:
        """Return the user's endpoint, or None.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def remove(self, user_id: str, webhook_id: UUID) -> bool:
        """Stage the deletion of the user's endpoint and of its deliveries; False if there is none.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def set_health(
        self,
        user_id: str,
        webhook_id: UUID,
        *,
        failing_since: datetime | None,
        disabled_at: datetime | None,
        disabled_reason: str | None,
    ) -> None:
        """Stage how the endpoint's deliveries go: failing since when, disabled since when and why.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def enqueue(
        self,
        user_id: str,
        event_type: str,
        event_id: UUID,
        body: str,
        now: datetime,
        *,
        due_at: datetime | None = None,
        task_id: UUID | None = None,
    ) -> None:
        """Stage a delivery of the event, due `due_at` (default: `now`), for each of the user's
        enabled endpoints that want its type (none: nothing is written); `task_id` names the
        task of a reminder.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def schedule_reminder(
        self, user_id: str, task_id: UUID, event_id: UUID, body: str, *, due_at: datetime, now: datetime
    ) -> None:
        """Stage the task's reminder, due at `due_at`, whose `reminder.due` event is `body` (what
        endpoints want it is decided when it falls due: see `claim_due_reminders`).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def claim_due_reminders(self, now: datetime, limit: int) -> Sequence[DueReminder]:
        """Take up to `limit` reminders due by `now`, of every user, soonest first, out of the
        store: once this unit of work commits, no other process gets them. Reminders another unit
        of work holds are skipped, not waited for.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def next_due(self) -> datetime | None:
        """When the soonest of every user's reminders, and of their pending deliveries to enabled
        endpoints, is due (it may have passed); None if there is none.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def cancel_reminders(self, user_id: str, task_id: UUID) -> None:
        """Stage the deletion of the task's reminder not yet due.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def deliveries(self, user_id: str, webhook_id: UUID, limit: int) -> Sequence[Delivery]:
        """Return the endpoint's latest `limit` deliveries, newest first.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[ClaimedDelivery]:
        """Take up to `limit` pending deliveries due by `now`, of every user, oldest due first, to
        enabled endpoints: each counts one more attempt and is not due again before
        `lease_until`. Deliveries another unit of work holds are skipped, not waited for.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def record_attempt(
        self, delivery: Delivery, outcome: AttemptOutcome, *, now: datetime, next_attempt_at: datetime | None
    ) -> None:
        """Stage what the delivery's latest attempt got: delivered (2xx), due again at
        `next_attempt_at`, or failed for good (None).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...
