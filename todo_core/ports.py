"""What the domain needs from the outside world, as protocols the adapters implement.

Repositories read and stage changes; only the unit of work commits. Every method takes the
owning user's id, and every implementation filters by it: a row of another user is, to the
caller, a row that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from todo_core.calendar_feed import CalendarFeed
from todo_core.category import Category
from todo_core.clock import Clock
from todo_core.idempotency import Outcome, Recorded
from todo_core.identity import IdentityVerifier
from todo_core.portability import ExportPage, StructurePosition
from todo_core.query import TaskQuery
from todo_core.sync import ChangePage, ChangePosition
from todo_core.task import Task
from todo_core.user_settings import UserSettings
from todo_core.views import VersionedView, ViewPage
from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, Delivery, DueReminder, Webhook

__all__ = [
    "AccountEraser",
    "AccountSnapshot",
    "CalendarFeedRepository",
    "CategoryRepository",
    "ChangeFeed",
    "Clock",
    "ExportReader",
    "IdempotencyKeys",
    "IdentityVerifier",
    "Retention",
    "SettingsRepository",
    "TaskRepository",
    "TaskViews",
    "UnitOfWork",
    "WebhookDestinations",
    "WebhookRepository",
    "WebhookSender",
]


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


class TaskViews(Protocol):
    """The read side of tasks: views ready for the wire, each read in one statement that needs
    no transaction (a read never waits for, or holds up, a writer)."""

    async def list_for_user(self, user_id: str, query: TaskQuery) -> ViewPage:
        """Return the page of the user's tasks that the (validated) query selects, in its order.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def get(self, user_id: str, task_id: UUID) -> VersionedView | None:
        """Return the view of the user's task with this id, or None if the user has none.

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

    async def record(self, user_id: str, key: str, outcome: Outcome) -> None:
        """Stage what the command run under the key (claimed in this unit of work) answered.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class ChangeFeed(Protocol):
    """The read side of sync. Every change of a user's data, committed by a unit of work,
    takes the user's next change number (see `todo_core.sync`)."""

    async def changes(self, user_id: str, after: ChangePosition, limit: int, *, deletions: bool = True) -> ChangePage:
        """Up to `limit` of the user's changes after the position, in order, and the user's
        change log, all read in one snapshot; and where the next page starts. Without
        `deletions`, deleted rows are left out (a snapshot for a client that holds nothing).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def change_number(self, user_id: str) -> int:
        """Return the number of the user's latest committed change, 0 if there was none: one
        read of one row, which tells whether anything of the user's changed since a number.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class AccountSnapshot(Protocol):
    """One user's data as it was at one instant: every read sees the same commits."""

    async def settings(self) -> UserSettings:
        """Return the user's settings (the defaults if the user never saved any).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def categories(self) -> Sequence[Category]:
        """Return all of the user's categories, by name (case-insensitive).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...

    async def tasks(self, after: StructurePosition | None, limit: int) -> ExportPage:
        """Return up to `limit` of the user's tasks in structure order (see
        `todo_core.portability`), those after `after` (None: from the first), and where the next
        page starts. Each task comes exactly once over the pages, after its parent. The cost of a
        page does not grow with how many came before it.

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


class ExportReader(Protocol):
    """The read side of export: a user's whole account, read in pages from one snapshot."""

    def snapshot(self, user_id: str) -> AbstractAsyncContextManager[AccountSnapshot]:
        """A snapshot of the user's data for the block: no commit made meanwhile is seen, and
        no writer waits for it. Hold it only as long as the reading takes (it holds a
        connection).

        :raises StorageUnavailable: the store cannot be reached.
        """
        ...


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


class UnitOfWork(Protocol):
    """One transaction. Leaving the `async with` block without `commit()` rolls back.

    A unit of work that changes a user's data gives the change the user's next change number
    when it first touches the user's rows (before its first read of them), and holds the
    user's counter until it ends: the user's units of work that write take turns, each
    reading what the one before committed, and their changes commit in the order of their
    numbers. This turn is the one guard of every rule a command checks on what it read (no
    lost change, `If-Match`, a category that exists, the depth and cycle rules of subtasks, one
    answer per idempotency key); no row is locked on top of it (see docs/guarantees.md)."""

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def categories(self) -> CategoryRepository: ...

    @property
    def idempotency(self) -> IdempotencyKeys: ...

    @property
    def settings(self) -> SettingsRepository: ...

    @property
    def feeds(self) -> CalendarFeedRepository: ...

    @property
    def account(self) -> AccountEraser: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make every staged change durable, all or none.

        :raises Conflict: a uniqueness rule was broken by a concurrent change.
        :raises StorageUnavailable: the store cannot be reached.
        """
        ...
