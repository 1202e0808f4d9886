"""The in-memory unit of work: one transaction on the store (see `todo_adapters.memory`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from todo_adapters.memory.bundle import InMemoryRepositories
from todo_adapters.memory.tables import InMemoryStore, Key, Rows, Staging, Tombstone, Turns
from todo_core.sync import ChangeKind, ChangeLog


class InMemoryUnitOfWork(InMemoryRepositories):
    """With `read_only`, it waits for no writer (as the SQL adapters' read-only units of work)."""

    def __init__(self, store: InMemoryStore, *, read_only: bool = False) -> None:
        self._store = store
        self._read_only = read_only

    async def __aenter__(self) -> Self:
        self._view = Staging(Rows(self._store.tasks), Rows(self._store.categories), feeds=Rows(self._store.feeds))
        self._locks = Turns(self._store.turns, taking_users=not self._read_only)
        self._open_repositories(self._store, self._view, self._locks)
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
                store.tombstones[key] = Tombstone(kind, seq, view.deleted_at[key])
            else:
                store.change_seqs[(kind, key)] = seq
        return numbers


def _drop_user(rows: dict[Any, Any], owner: Callable[[Any], str], user_id: str) -> None:
    for key in [key for key in rows if owner(key) == user_id]:
        del rows[key]
