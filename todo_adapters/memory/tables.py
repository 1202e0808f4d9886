"""The in-memory store: every user's rows as committed, and what one unit of work sees of them
(the committed rows with its own writes on top), as `todo_adapters.sqlalchemy.tables` is the
SQL schema."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from todo_adapters.broker import ChangeBroker
from todo_adapters.memory.webhooks import WebhookTables
from todo_core.calendar_feed import CalendarFeed
from todo_core.category import Category
from todo_core.idempotency import Answer
from todo_core.sync import ChangeKind, ChangeLog
from todo_core.task import Task
from todo_core.user_settings import UserSettings

Key = tuple[str, UUID]  # (user_id, id)
Row = TypeVar("Row")


@dataclasses.dataclass(frozen=True, slots=True)
class Tombstone:
    kind: ChangeKind
    seq: int
    deleted_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    fingerprint: str
    recorded_at: datetime
    answer: Answer | None


@dataclasses.dataclass
class InMemoryStore:
    """Everything every user has, as committed, and each user's turn to write."""

    tasks: dict[Key, Task] = dataclasses.field(default_factory=dict)
    categories: dict[Key, Category] = dataclasses.field(default_factory=dict)
    turns: defaultdict[str, asyncio.Lock] = dataclasses.field(default_factory=lambda: defaultdict(asyncio.Lock))
    #: Each user's change log, the change number of every row, and the tombstones.
    logs: dict[str, ChangeLog] = dataclasses.field(default_factory=dict)
    change_seqs: dict[tuple[ChangeKind, Key], int] = dataclasses.field(default_factory=dict)
    tombstones: dict[Key, Tombstone] = dataclasses.field(default_factory=dict)
    keys: dict[tuple[str, str], KeyRecord] = dataclasses.field(default_factory=dict)
    settings: dict[str, UserSettings] = dataclasses.field(default_factory=dict)
    feeds: dict[Key, CalendarFeed] = dataclasses.field(default_factory=dict)
    webhooks: WebhookTables = dataclasses.field(default_factory=WebhookTables)
    #: Where committed changes are announced.
    broker: ChangeBroker | None = None
    #: Whether a purge runs (one at a time).
    purging: bool = False


class Rows(MutableMapping[Key, Row], Generic[Row]):
    """One table as a unit of work sees it: the committed rows, with its own writes on top."""

    def __init__(self, committed: dict[Key, Row]) -> None:
        self._committed = committed
        self.written: dict[Key, Row | None] = {}  # None: deleted

    def __getitem__(self, key: Key) -> Row:
        row = self.written[key] if key in self.written else self._committed[key]
        if row is None:
            raise KeyError(key)
        return row

    def __setitem__(self, key: Key, row: Row) -> None:
        self.written[key] = row

    def __delitem__(self, key: Key) -> None:
        if key not in self:
            raise KeyError(key)
        self.written[key] = None

    def __iter__(self) -> Iterator[Key]:
        yield from (key for key in self._committed if key not in self.written)
        yield from (key for key, row in self.written.items() if row is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def apply(self) -> None:
        """Make this unit of work's writes the committed rows, and start a new write set."""
        for key, row in self.written.items():
            if row is None:
                self._committed.pop(key, None)
            else:
                self._committed[key] = row
        self.written = {}


@dataclasses.dataclass
class Staging:
    tasks: Rows[Task]
    categories: Rows[Category]
    keys: dict[tuple[str, str], KeyRecord] = dataclasses.field(default_factory=dict)
    deleted_at: dict[Key, datetime] = dataclasses.field(default_factory=dict)
    #: The settings this unit of work saved.
    settings: dict[str, UserSettings] = dataclasses.field(default_factory=dict)
    feeds: Rows[CalendarFeed] = dataclasses.field(default_factory=lambda: Rows({}))
    #: The users this unit of work erases, at its commit.
    erased: set[str] = dataclasses.field(default_factory=set)


class Turns:
    """The users' turns one unit of work holds: taken when first needed, all given back at its end."""

    def __init__(self, turns: defaultdict[str, asyncio.Lock], *, taking_users: bool = True) -> None:
        self._turns = turns
        self._taking_users = taking_users
        self._held: set[str] = set()

    async def take_user(self, user_id: str) -> None:
        """Take the user's turn until the unit of work ends, before any of the user's rows, as
        the SQL adapters take the user's change counter: one user's units of work that touch
        their data take turns, each reading what the one before committed. A unit of work
        that only reads takes no turn."""
        if self._taking_users and user_id not in self._held:
            await self._turns[user_id].acquire()
            self._held.add(user_id)

    def release(self) -> None:
        for held in self._held:
            self._turns[held].release()
        self._held.clear()
