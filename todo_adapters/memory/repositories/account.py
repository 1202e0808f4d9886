"""Erasing a user's account in memory (`todo_core.ports.AccountEraser`)."""

from __future__ import annotations

from todo_adapters.memory.tables import Staging, Turns


class InMemoryAccountEraser:
    def __init__(self, view: Staging, locks: Turns) -> None:
        self._view = view
        self._locks = locks

    async def erase(self, user_id: str) -> None:
        await self._locks.take_user(user_id)  # no other unit of work writes the user's data meanwhile
        self._view.erased.add(user_id)  # done at commit, on everything then committed
