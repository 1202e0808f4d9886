"""The read side of sync in memory, and the purge of what it keeps for a while."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from todo_adapters.memory.tables import InMemoryStore
from todo_core.sync import Change, ChangeKind, ChangeLog, ChangePage, ChangePosition, page_of
from todo_core.views import category_view, task_view


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
