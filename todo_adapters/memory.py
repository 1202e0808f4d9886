"""In-memory adapter: dictionaries behind the repository ports, for tests and the domain suite.

It gives the guarantees of the SQL adapters. A unit of work reads the committed rows with its
own writes on top, and `commit()` applies those writes and nothing else: an abandoned unit of
work leaves nothing behind, and one that commits never undoes another's commit. A unit of
work that writes takes its user's turn before it first touches the user's rows and keeps it
until it ends, as the SQL adapters hold the user's change counter: one user's writers take
turns, and no row is locked on top of that.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

from todo_adapters.broker import ChangeBroker
from todo_adapters.memory_webhooks import InMemoryWebhookRepository, WebhookTables
from todo_core import subtasks
from todo_core.calendar_feed import CalendarFeed
from todo_core.category import Category
from todo_core.errors import Conflict
from todo_core.idempotency import Outcome, Recorded
from todo_core.outbox import AnnouncedTasks
from todo_core.portability import LEVELS, ExportPage, StructurePosition
from todo_core.query import TaskQuery
from todo_core.sync import Change, ChangeKind, ChangeLog, ChangePage, ChangePosition, page_of
from todo_core.task import Task
from todo_core.user_settings import UserSettings
from todo_core.views import VersionedView, ViewPage, category_view, task_view

Key = tuple[str, UUID]  # (user_id, id)
Row = TypeVar("Row")


@dataclasses.dataclass(frozen=True, slots=True)
class _Tombstone:
    kind: ChangeKind
    seq: int
    deleted_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class _KeyRecord:
    fingerprint: str
    recorded_at: datetime
    outcome: Outcome | None


@dataclasses.dataclass
class InMemoryStore:
    """Everything every user has, as committed, and each user's turn to write."""

    tasks: dict[Key, Task] = dataclasses.field(default_factory=dict)
    categories: dict[Key, Category] = dataclasses.field(default_factory=dict)
    turns: defaultdict[str, asyncio.Lock] = dataclasses.field(default_factory=lambda: defaultdict(asyncio.Lock))
    #: Each user's change log, the change number of every row, and the tombstones.
    logs: dict[str, ChangeLog] = dataclasses.field(default_factory=dict)
    change_seqs: dict[tuple[ChangeKind, Key], int] = dataclasses.field(default_factory=dict)
    tombstones: dict[Key, _Tombstone] = dataclasses.field(default_factory=dict)
    keys: dict[tuple[str, str], _KeyRecord] = dataclasses.field(default_factory=dict)
    settings: dict[str, UserSettings] = dataclasses.field(default_factory=dict)
    feeds: dict[Key, CalendarFeed] = dataclasses.field(default_factory=dict)
    webhooks: WebhookTables = dataclasses.field(default_factory=WebhookTables)
    #: Where committed changes are announced.
    broker: ChangeBroker | None = None
    #: Whether a purge runs (one at a time).
    purging: bool = False


class _Rows(MutableMapping[Key, Row], Generic[Row]):
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
class _View:
    tasks: _Rows[Task]
    categories: _Rows[Category]
    keys: dict[tuple[str, str], _KeyRecord] = dataclasses.field(default_factory=dict)
    deleted_at: dict[Key, datetime] = dataclasses.field(default_factory=dict)
    #: The settings this unit of work saved.
    settings: dict[str, UserSettings] = dataclasses.field(default_factory=dict)
    feeds: _Rows[CalendarFeed] = dataclasses.field(default_factory=lambda: _Rows({}))
    #: The users this unit of work erases, at its commit.
    erased: set[str] = dataclasses.field(default_factory=set)


class _Turns:
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


class InMemoryTaskRepository:
    def __init__(self, store: _View, locks: _Turns) -> None:
        self._store = store
        self._locks = locks

    async def get(self, user_id: str, task_id: UUID) -> Task | None:
        await self._locks.take_user(user_id)
        return self._store.tasks.get((user_id, task_id))

    async def ancestors(self, user_id: str, task_id: UUID) -> Sequence[UUID]:
        await self._locks.take_user(user_id)
        found: list[UUID] = []
        task = self._store.tasks.get((user_id, task_id))
        while task is not None and task.fields.parent_id is not None and len(found) < subtasks.WALK_BOUND:
            found.append(task.fields.parent_id)
            task = self._store.tasks.get((user_id, task.fields.parent_id))
        return found

    async def descendants(self, user_id: str, task_id: UUID) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        found: list[Task] = []
        level = [task_id]
        for _ in range(subtasks.WALK_BOUND):
            below = sorted(
                (
                    task
                    for (owner, _), task in self._store.tasks.items()
                    if owner == user_id and task.fields.parent_id in level
                ),
                key=lambda task: (task.position, task.id),
            )
            if not below:
                break
            found += below
            level = [task.id for task in below]
        return found

    async def children(
        self,
        user_id: str,
        parent_id: UUID | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        return sorted(
            (
                task
                for (owner, _), task in self._store.tasks.items()
                if owner == user_id and task.fields.parent_id == parent_id and (after is None or task.position > after)
            ),
            key=lambda task: (task.position, task.id),
        )[:limit]

    async def count_for_user(self, user_id: str, *, up_to: int) -> int:
        await self._locks.take_user(user_id)
        return min(up_to, sum(1 for owner, _ in self._store.tasks if owner == user_id))

    async def last_position(self, user_id: str, parent_id: UUID | None) -> str | None:
        await self._locks.take_user(user_id)
        positions = [
            task.position
            for (owner, _), task in self._store.tasks.items()
            if owner == user_id and task.fields.parent_id == parent_id
        ]
        return max(positions, default=None)

    async def add(self, task: Task) -> None:
        await self._locks.take_user(task.user_id)
        self._store.tasks[(task.user_id, task.id)] = task

    async def add_many(self, new: Sequence[Task]) -> None:
        for task in new:
            await self.add(task)

    async def update(self, task: Task) -> None:
        await self._locks.take_user(task.user_id)
        self._store.tasks[(task.user_id, task.id)] = task

    async def remove(self, user_id: str, task_id: UUID, now: datetime, *, version: int | None = None) -> bool:
        await self._locks.take_user(user_id)
        stored = self._store.tasks.get((user_id, task_id))
        if stored is None or (version is not None and stored.version != version):
            return False
        del self._store.tasks[(user_id, task_id)]
        self._store.deleted_at[(user_id, task_id)] = now
        return True

    async def clear_category(self, user_id: str, category_id: UUID, now: datetime) -> None:
        await self._locks.take_user(user_id)
        for key, task in list(self._store.tasks.items()):
            if key[0] == user_id and task.fields.category_id == category_id:
                fields = dataclasses.replace(task.fields, category_id=None)
                self._store.tasks[key] = task.with_fields(fields, now)

    async def tag_counts(self, user_id: str) -> Sequence[tuple[str, int]]:
        await self._locks.take_user(user_id)
        # Spellings differ in case only; each tag shows as its least spelling, as SQL's min().
        counts: Counter[str] = Counter()
        shown: dict[str, str] = {}
        for (owner, _), task in self._store.tasks.items():
            if owner == user_id:
                for tag, key in zip(task.fields.tags, task.tag_keys, strict=True):
                    counts[key] += 1
                    shown[key] = min(shown.get(key, tag), tag)
        return [(shown[key], n) for key, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    async def due_reminders(self, user_id: str, until: datetime, limit: int) -> Sequence[Task]:
        await self._locks.take_user(user_id)
        due = [
            task
            for (owner, _), task in self._store.tasks.items()
            if owner == user_id
            and not task.fields.completed
            and task.fields.remind_at is not None
            and task.fields.remind_at <= until
        ]
        return sorted(due, key=lambda task: (task.fields.remind_at, task.id))[:limit]


class InMemoryCategoryRepository:
    def __init__(self, store: _View, locks: _Turns) -> None:
        self._store = store
        self._locks = locks

    async def get(self, user_id: str, category_id: UUID) -> Category | None:
        await self._locks.take_user(user_id)
        return self._store.categories.get((user_id, category_id))

    async def list_for_user(self, user_id: str) -> Sequence[Category]:
        await self._locks.take_user(user_id)
        owned = [category for (owner, _), category in self._store.categories.items() if owner == user_id]
        return sorted(owned, key=lambda category: (category.name_key, category.id))

    async def add(self, category: Category) -> None:
        await self._locks.take_user(category.user_id)
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def update(self, category: Category) -> None:
        await self._locks.take_user(category.user_id)
        self._check_name_free(category)
        self._store.categories[(category.user_id, category.id)] = category

    async def remove(self, user_id: str, category_id: UUID, now: datetime) -> bool:
        await self._locks.take_user(user_id)
        if self._store.categories.pop((user_id, category_id), None) is None:
            return False
        self._store.deleted_at[(user_id, category_id)] = now
        return True

    def check_names_free(self) -> None:
        """:raises Conflict: a category this unit of work wrote has a name taken since."""
        for category in self._store.categories.written.values():
            if category is not None:
                self._check_name_free(category)

    def _check_name_free(self, category: Category) -> None:
        for (owner, other_id), other in self._store.categories.items():
            if owner == category.user_id and other_id != category.id and other.name_key == category.name_key:
                raise Conflict(f"you already have a category named {other.fields.name!r}")


class InMemoryIdempotencyKeys:
    def __init__(self, store: InMemoryStore, view: _View, locks: _Turns) -> None:
        self._store = store
        self._view = view
        self._locks = locks

    async def claim(
        self, user_id: str, key: str, fingerprint: str, *, now: datetime, expired_before: datetime
    ) -> Recorded | None:
        await self._locks.take_user(user_id)
        found = self._store.keys.get((user_id, key))
        if found is not None and found.outcome is not None and found.recorded_at >= expired_before:
            return Recorded(found.fingerprint, found.outcome)
        self._view.keys[(user_id, key)] = _KeyRecord(fingerprint, now, None)
        return None

    async def record(self, user_id: str, key: str, outcome: Outcome) -> None:
        self._view.keys[(user_id, key)] = dataclasses.replace(self._view.keys[(user_id, key)], outcome=outcome)


class InMemorySettingsRepository:
    def __init__(self, store: InMemoryStore, view: _View) -> None:
        self._store = store
        self._view = view

    async def get(self, user_id: str) -> UserSettings:
        if user_id in self._view.settings:
            return self._view.settings[user_id]
        return self._store.settings.get(user_id, UserSettings())

    async def put(self, user_id: str, settings: UserSettings) -> None:
        self._view.settings[user_id] = settings


class InMemoryCalendarFeedRepository:
    def __init__(self, view: _View) -> None:
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


class InMemoryAccountEraser:
    def __init__(self, view: _View, locks: _Turns) -> None:
        self._view = view
        self._locks = locks

    async def erase(self, user_id: str) -> None:
        await self._locks.take_user(user_id)  # no other unit of work writes the user's data meanwhile
        self._view.erased.add(user_id)  # done at commit, on everything then committed


class InMemoryUnitOfWork:
    """With `read_only`, it waits for no writer (as the SQL adapters' read-only units of work)."""

    def __init__(self, store: InMemoryStore, *, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only

    async def __aenter__(self) -> Self:
        self._view = _View(_Rows(self._store.tasks), _Rows(self._store.categories))
        self._locks = _Turns(self._store.turns, taking_users=not self._read_only)
        self.webhooks = InMemoryWebhookRepository(self._store.webhooks)
        self.tasks = AnnouncedTasks(InMemoryTaskRepository(self._view, self._locks), self.webhooks)
        self.categories = InMemoryCategoryRepository(self._view, self._locks)
        self.idempotency = InMemoryIdempotencyKeys(self._store, self._view, self._locks)
        self.settings = InMemorySettingsRepository(self._store, self._view)
        self._view.feeds = _Rows(self._store.feeds)
        self.feeds = InMemoryCalendarFeedRepository(self._view)
        self.account = InMemoryAccountEraser(self._view, self._locks)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._locks.release()  # and what was not committed is dropped with the view

    async def commit(self) -> None:
        # Another unit of work may have committed the same name since this one checked it:
        # check again, as the unique index does at commit.
        self.categories.check_names_free()
        changed = self._stamp()
        self._view.tasks.apply()
        self._view.categories.apply()
        self._store.keys.update(self._view.keys)
        self._view.keys = {}
        # Settings are not synced data: no change number (see `SettingsRepository`).
        self._store.settings.update(self._view.settings)
        self._view.settings = {}
        self._view.feeds.apply()
        self.webhooks.apply()
        for user_id in self._view.erased:
            changed[user_id] = self._erase(user_id)
        self._view.erased = set()
        if self._store.broker is not None:
            for user_id, seq in changed.items():
                self._store.broker.publish(user_id, seq)

    def _erase(self, user_id: str) -> int:
        """Forget every row of the user's, but for the change log: moved on by one, with its
        horizon there, so that every sync token issued before is refused. Return its number."""
        store = self._store
        for rows in (store.tasks, store.categories, store.tombstones, store.feeds, store.keys):
            _drop_user(rows, lambda key: key[0], user_id)
        _drop_user(store.change_seqs, lambda key: key[1][0], user_id)
        store.settings.pop(user_id, None)
        self.webhooks.erase(user_id)
        seq = store.logs.get(user_id, ChangeLog(0, 0)).seq + 1
        store.logs[user_id] = ChangeLog(seq, seq)
        return seq

    def _stamp(self) -> dict[str, int]:
        """Give each user whose data this unit of work changed their next change number, on
        every row written and on the tombstone of every row deleted; return the numbers."""
        store, view = self._store, self._view
        written: list[tuple[ChangeKind, Key, object]] = [
            (ChangeKind.TASK, key, row) for key, row in view.tasks.written.items()
        ]
        written += [(ChangeKind.CATEGORY, key, row) for key, row in view.categories.written.items()]
        numbers: dict[str, int] = {}
        for kind, key, row in written:
            user_id = key[0]
            if user_id not in numbers:
                log = store.logs.get(user_id, ChangeLog(0, 0))
                store.logs[user_id] = log = dataclasses.replace(log, seq=log.seq + 1)
                numbers[user_id] = log.seq
            seq = numbers[user_id]
            if row is None:
                store.change_seqs.pop((kind, key), None)
                store.tombstones[key] = _Tombstone(kind, seq, view.deleted_at[key])
            else:
                store.change_seqs[(kind, key)] = seq
        return numbers


def _drop_user(rows: dict[Any, Any], owner: Callable[[Any], str], user_id: str) -> None:
    for key in [key for key in rows if owner(key) == user_id]:
        del rows[key]


class InMemoryTaskViews:
    """The read side on the committed store: what a fresh unit of work would see."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def list_for_user(self, user_id: str, query: TaskQuery) -> ViewPage:
        selected = [task for (owner, _), task in self._store.tasks.items() if owner == user_id and query.matches(task)]
        selected.sort(key=query.sort_key, reverse=query.sort.descending)
        if query.after is not None:
            after = query.after
            selected = [task for task in selected if query.comes_after(task, after)]
        page = selected[: query.limit]
        more = len(selected) > query.limit
        return ViewPage([task_view(task) for task in page], query.position_of(page[-1]) if more else None)

    async def get(self, user_id: str, task_id: UUID) -> VersionedView | None:
        task = self._store.tasks.get((user_id, task_id))
        return VersionedView(task_view(task), task.version) if task else None


class InMemoryChangeFeed:
    """The read side of sync on the committed store."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    async def changes(self, user_id: str, after: ChangePosition, limit: int, *, deletions: bool = True) -> ChangePage:
        store = self._store
        changed: list[Change] = []
        for (kind, (owner, row_id)), seq in store.change_seqs.items():
            if owner == user_id and ChangePosition(seq, kind, row_id) > after:
                if kind is ChangeKind.TASK:
                    changed.append((seq, kind, row_id, task_view(store.tasks[(owner, row_id)])))
                else:
                    changed.append((seq, kind, row_id, category_view(store.categories[(owner, row_id)])))
        if deletions:
            for (owner, row_id), tombstone in store.tombstones.items():
                if owner == user_id and ChangePosition(tombstone.seq, ChangeKind.DELETION, row_id) > after:
                    changed.append((tombstone.seq, ChangeKind.DELETION, row_id, tombstone.kind))
        return page_of(store.logs.get(user_id, ChangeLog(0, 0)), changed, after, limit)

    async def change_number(self, user_id: str) -> int:
        return self._store.logs.get(user_id, ChangeLog(0, 0)).seq


class InMemoryRetention:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    @asynccontextmanager
    async def exclusively(self) -> AsyncIterator[bool]:
        store = self._store
        if store.purging:
            yield False
            return
        store.purging = True
        try:
            yield True
        finally:
            store.purging = False

    async def purge_tombstones(self, *, deleted_before: datetime, limit: int) -> int:
        store = self._store
        expired = sorted(
            (tombstone.deleted_at, key)
            for key, tombstone in store.tombstones.items()
            if tombstone.deleted_at < deleted_before
        )
        for _, key in expired[:limit]:
            user_id, seq = key[0], store.tombstones.pop(key).seq
            log = store.logs[user_id]
            store.logs[user_id] = dataclasses.replace(log, horizon=max(log.horizon, seq))
        return min(limit, len(expired))

    async def purge_keys(self, *, recorded_before: datetime, limit: int) -> int:
        store = self._store
        expired = sorted(
            (record.recorded_at, name) for name, record in store.keys.items() if record.recorded_at < recorded_before
        )
        for _, name in expired[:limit]:
            del store.keys[name]
        return min(limit, len(expired))

    async def purge_deliveries(self, *, finished_before: datetime, limit: int) -> int:
        return self._store.webhooks.purge_finished(finished_before, limit)


class InMemoryAccountSnapshot:
    """A user's data as committed when the snapshot was taken (a copy of the user's rows)."""

    def __init__(self, store: InMemoryStore, user_id: str) -> None:
        self._settings = store.settings.get(user_id, UserSettings())
        self._categories = [category for (owner, _), category in store.categories.items() if owner == user_id]
        tasks = {task.id: task for (owner, _), task in store.tasks.items() if owner == user_id}
        self._ordered: list[tuple[tuple[object, ...], StructurePosition, Task]] = []
        for task in tasks.values():
            level, parent = 0, task.fields.parent_id
            while parent is not None and parent in tasks and level < subtasks.WALK_BOUND:
                level, parent = level + 1, tasks[parent].fields.parent_id
            if parent is None and level < LEVELS:
                position = StructurePosition.of(level, task)
                self._ordered.append((_structure_key(position), position, task))
        self._ordered.sort(key=lambda entry: entry[0])

    async def settings(self) -> UserSettings:
        return self._settings

    async def categories(self) -> Sequence[Category]:
        return sorted(self._categories, key=lambda category: (category.name_key, category.id))

    async def tasks(self, after: StructurePosition | None, limit: int) -> ExportPage:
        key = None if after is None else _structure_key(after)
        later = [entry for entry in self._ordered if key is None or entry[0] > key]
        page = later[:limit]
        return ExportPage([task for _, _, task in page], page[-1][1] if len(later) > limit else None)


def _structure_key(position: StructurePosition) -> tuple[object, ...]:
    parent = position.parent_id.int if position.parent_id is not None else -1
    return (position.level, parent, position.position, position.id.int)


class InMemoryExportReader:
    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    @asynccontextmanager
    async def snapshot(self, user_id: str) -> AsyncIterator[InMemoryAccountSnapshot]:
        yield InMemoryAccountSnapshot(self._store, user_id)
