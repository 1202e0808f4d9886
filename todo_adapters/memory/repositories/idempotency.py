"""Idempotency keys in memory (`todo_core.ports.IdempotencyKeys`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from todo_adapters.memory.tables import InMemoryStore, KeyRecord, Staging, Turns
from todo_core.idempotency import Answer, Recorded


class InMemoryIdempotencyKeys:
    def __init__(self, store: InMemoryStore, view: Staging, locks: Turns) -> None:
        self._store = store
        self._view = view
        self._locks = locks

    async def claim(
        self, user_id: str, key: str, fingerprint: str, *, now: datetime, expired_before: datetime
    ) -> Recorded | None:
        await self._locks.take_user(user_id)
        found = self._store.keys.get((user_id, key))
        if found is not None and found.answer is not None and found.recorded_at >= expired_before:
            return Recorded(found.fingerprint, found.answer)
        self._view.keys[(user_id, key)] = KeyRecord(fingerprint, now, None)
        return None

    async def record(self, user_id: str, key: str, answer: Answer) -> None:
        self._view.keys[(user_id, key)] = dataclasses.replace(self._view.keys[(user_id, key)], answer=answer)
