"""The purge of what is kept only for a while, on every adapter: a backlog far larger than one
batch drains completely, a batch at a time, each user's change log horizon moving past what it
forgot; and only one purge runs at a time (the others skip)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Backend
from tests.domain.conftest import FixedClock
from todo_adapters.memory.tables import InMemoryStore, KeyRecord, Tombstone
from todo_adapters.sqlalchemy.tables import idempotency_keys, tombstones, user_changes
from todo_core.ports import Retention
from todo_core.sync import ChangeKind, ChangeLog, ChangePosition
from todo_core.use_cases.sync import Purged, changes_since, purge_expired

USERS = 40
BATCH = 1_000
#: Rows per user: the backlog of the drain test (20,000 tombstones and 5,000 keys), and of the
#: others (2,000 of each, two batches).
TOMBSTONES_PER_USER, KEYS_PER_USER = 500, 125
SMALL = 50
#: Older than anything another test of the session writes: the purges here see only these rows.
LONG_AGO = datetime(1980, 1, 1, tzinfo=UTC)
KEPT_TOMBSTONES, KEPT_KEYS = timedelta(days=30), timedelta(hours=24)


@dataclass
class Backlog:
    """Expired rows of `users` in one backend, and how to count those left."""

    users: list[str]
    tombstones_per_user: int
    keys_per_user: int
    backend: Backend
    name: str
    engine: AsyncEngine | None
    store: InMemoryStore | None

    @property
    def stored(self) -> tuple[int, int]:
        """How many tombstones and keys were seeded."""
        return USERS * self.tombstones_per_user, USERS * self.keys_per_user

    @property
    def cutoff(self) -> datetime:
        return self.purged_at().now() - KEPT_TOMBSTONES

    @staticmethod
    def purged_at() -> FixedClock:
        return FixedClock(LONG_AGO + KEPT_TOMBSTONES + timedelta(days=1))

    async def left(self) -> tuple[int, int]:
        """The tombstones and keys of these users still stored."""
        if self.store is not None:
            return (
                sum(user in self.users for user, _ in self.store.tombstones),
                sum(user in self.users for user, _ in self.store.keys),
            )
        assert self.engine is not None
        async with self.engine.connect() as connection:
            counts = []
            for table in (tombstones, idempotency_keys):
                statement = select(func.count()).select_from(table).where(table.c.user_id.in_(self.users))
                counts.append((await connection.execute(statement)).scalar_one())
        return counts[0], counts[1]


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> AsyncEngine | None:
    """The SQL backend's engine (the rows are seeded with it); None in memory."""
    name = request.node.callspec.params["backend"]
    found: AsyncEngine | None = None if name == "memory" else request.getfixturevalue(f"{name}_engine")
    return found


@pytest.fixture
async def backlog(
    backend: Backend, engine: AsyncEngine | None, request: pytest.FixtureRequest
) -> AsyncIterator[Backlog]:
    """The rows (per user: `request.param` of each, default TOMBSTONES_PER_USER and KEYS_PER_USER),
    removed after the test (the purges of the session's other tests must not find them, nor
    those of the next test here)."""
    name = request.node.callspec.params["backend"]
    per_user = getattr(request, "param", None)
    tombstones_per_user, keys_per_user = (per_user, per_user) if per_user else (TOMBSTONES_PER_USER, KEYS_PER_USER)
    prefix = f"purge-{uuid.uuid4().hex[:8]}"
    users = [f"{prefix}-{n}" for n in range(USERS)]
    deleted = [
        (user, uuid.uuid4(), seq, LONG_AGO + timedelta(seconds=seq))
        for user in users
        for seq in range(1, tombstones_per_user + 1)
    ]
    keys = [(user, f"key-{n}") for user in users for n in range(keys_per_user)]
    if engine is None:
        store: InMemoryStore = backend.retention._store  # type: ignore[attr-defined]
        for user in users:
            store.logs[user] = ChangeLog(tombstones_per_user, 0)
        for user, row_id, seq, at in deleted:
            store.tombstones[(user, row_id)] = Tombstone(ChangeKind.TASK, seq, at)
        for key in keys:
            store.keys[key] = KeyRecord("fingerprint", LONG_AGO, None)
        yield Backlog(users, tombstones_per_user, keys_per_user, backend, name, None, store)
        return
    async with engine.begin() as connection:
        await connection.execute(
            insert(user_changes), [{"user_id": user, "seq": tombstones_per_user, "horizon": 0} for user in users]
        )
        await connection.execute(
            insert(tombstones),
            [
                {"user_id": user, "id": row_id, "kind": int(ChangeKind.TASK), "change_seq": seq, "deleted_at": at}
                for user, row_id, seq, at in deleted
            ],
        )
        await connection.execute(
            insert(idempotency_keys),
            [
                {"user_id": user, "key": key, "fingerprint": "fingerprint", "recorded_at": LONG_AGO}
                for user, key in keys
            ],
        )
    yield Backlog(users, tombstones_per_user, keys_per_user, backend, name, engine, None)
    async with engine.begin() as connection:
        for table in (tombstones, idempotency_keys, user_changes):
            await connection.execute(delete(table).where(table.c.user_id.in_(users)))


async def horizons(backlog: Backlog) -> set[int]:
    """Each user's change log horizon, read through sync."""
    found = set()
    for user in backlog.users:
        page = await changes_since(backlog.backend.feed, user, None, 1)
        found.add(page.log.horizon)
    return found


@pytest.mark.parametrize("backlog", [SMALL], indirect=True)
async def test_one_batch_forgets_at_most_its_size_and_moves_the_horizons_past_what_it_forgot(
    backlog: Backlog,
) -> None:
    retention = backlog.backend.retention
    assert await retention.purge_tombstones(deleted_before=backlog.cutoff, limit=BATCH) == BATCH
    assert await retention.purge_keys(recorded_before=backlog.cutoff, limit=BATCH) == BATCH
    tombstones_stored, keys_stored = backlog.stored
    assert await backlog.left() == (tombstones_stored - BATCH, keys_stored - BATCH)
    # Oldest first: the first 25 numbers of every user (they were deleted in that order).
    assert await horizons(backlog) == {BATCH // USERS}
    first = backlog.users[0]
    with pytest.raises(Exception, match="no longer kept"):
        await changes_since(backlog.backend.feed, first, ChangePosition(BATCH // USERS - 1), 10)
    await changes_since(backlog.backend.feed, first, ChangePosition(BATCH // USERS), 10)  # still complete


async def test_a_backlog_far_larger_than_a_batch_drains_completely(backlog: Backlog) -> None:
    purged = await purge_expired(
        backlog.backend.retention, backlog.purged_at(), tombstones=KEPT_TOMBSTONES, keys=KEPT_KEYS, batch=BATCH
    )

    tombstone_batches = USERS * TOMBSTONES_PER_USER // BATCH + 1  # the last one finds less than a batch
    key_batches = USERS * KEYS_PER_USER // BATCH + 1
    delivery_batches = 1  # none finished so long ago: one batch finds none
    assert purged == Purged(
        USERS * TOMBSTONES_PER_USER, USERS * KEYS_PER_USER, tombstone_batches + key_batches + delivery_batches
    )
    assert await backlog.left() == (0, 0)
    assert await horizons(backlog) == {TOMBSTONES_PER_USER}


class PausedInItsFirstBatch:
    """A `Retention` whose first batch waits for `go`, once `inside` is set: a purge caught in
    the middle of its work, holding the lock."""

    def __init__(self, retention: Retention) -> None:
        self._retention = retention
        self.inside, self.go = asyncio.Event(), asyncio.Event()

    def exclusively(self) -> AbstractAsyncContextManager[bool]:
        return self._retention.exclusively()

    async def purge_tombstones(self, *, deleted_before: datetime, limit: int) -> int:
        if not self.inside.is_set():
            self.inside.set()
            await self.go.wait()
        return await self._retention.purge_tombstones(deleted_before=deleted_before, limit=limit)

    async def purge_keys(self, *, recorded_before: datetime, limit: int) -> int:
        return await self._retention.purge_keys(recorded_before=recorded_before, limit=limit)

    async def purge_deliveries(self, *, finished_before: datetime, limit: int) -> int:
        return await self._retention.purge_deliveries(finished_before=finished_before, limit=limit)


@pytest.mark.parametrize("backlog", [SMALL], indirect=True)
async def test_a_purge_that_starts_while_another_runs_skips_its_round(backlog: Backlog) -> None:
    clock = backlog.purged_at()
    first = PausedInItsFirstBatch(backlog.backend.retention)
    running = asyncio.ensure_future(
        purge_expired(first, clock, tombstones=KEPT_TOMBSTONES, keys=KEPT_KEYS, batch=BATCH)
    )
    await asyncio.wait_for(first.inside.wait(), 10)

    second = await purge_expired(
        backlog.backend.retention, clock, tombstones=KEPT_TOMBSTONES, keys=KEPT_KEYS, batch=BATCH
    )
    first.go.set()
    done = await asyncio.wait_for(running, 60)

    assert second is None
    assert done is not None and (done.tombstones, done.keys) == backlog.stored
    assert await backlog.left() == (0, 0)


@pytest.mark.parametrize("backlog", [SMALL], indirect=True)
async def test_a_purge_while_another_holds_the_lock_skips_and_one_after_it_runs(backlog: Backlog) -> None:
    retention = backlog.backend.retention
    clock = backlog.purged_at()
    async with retention.exclusively() as alone:
        assert alone
        assert await purge_expired(retention, clock, tombstones=KEPT_TOMBSTONES, keys=KEPT_KEYS, batch=BATCH) is None
        assert await backlog.left() == backlog.stored
    after = await purge_expired(retention, clock, tombstones=KEPT_TOMBSTONES, keys=KEPT_KEYS, batch=BATCH)
    assert after is not None and (after.tombstones, after.keys) == backlog.stored
