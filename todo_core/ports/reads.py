"""The read side: what queries read, shaped for the wire or for a whole account, without the
unit of work of a command (a read never waits for, or holds up, a writer)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from todo_core.category import Category
from todo_core.portability import ExportPage, StructurePosition
from todo_core.query import TaskQuery
from todo_core.sync import ChangePage, ChangePosition
from todo_core.user_settings import UserSettings
from todo_core.views import VersionedView, ViewPage


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
