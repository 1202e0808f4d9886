"""The unit of work: one transaction, and the repositories a command stages its changes in."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

from todo_core.ports.repositories import (
    AccountEraser,
    CalendarFeedRepository,
    CategoryRepository,
    IdempotencyKeys,
    SettingsRepository,
    TaskRepository,
    WebhookRepository,
)
from todo_core.task_changes import TaskChange


class Repositories(Protocol):
    """Every repository a unit of work hands out. A repository is added here, and to each
    adapter's one bundle (`todo_adapters.memory.bundle`, `todo_adapters.sqlalchemy.bundle`),
    which every unit of work of that adapter shares."""

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


class UnitOfWork(Repositories, Protocol):
    """One transaction. Leaving the `async with` block without `commit()` rolls back.

    A unit of work that changes a user's data gives the change the user's next change number
    when it first touches the user's rows (before its first read of them), and holds the
    user's counter until it ends: the user's units of work that write take turns, each
    reading what the one before committed, and their changes commit in the order of their
    numbers. This turn is the one guard of every rule a command checks on what it read (no
    lost change, `If-Match`, a category that exists, the depth and cycle rules of subtasks, one
    answer per idempotency key); no row is locked on top of it (see docs/guarantees.md).

    A command does not enter or commit it: the runner (`todo_core.commands`) does, for every
    command alike."""

    def collect_task_changes(self) -> Sequence[TaskChange]:
        """Return the task changes staged through `tasks` since the last call, in order (the
        runner records them as events in the outbox before it commits)."""
        ...

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
