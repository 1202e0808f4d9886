"""A user's settings in memory (`todo_core.ports.SettingsRepository`)."""

from __future__ import annotations

from todo_adapters.memory.tables import InMemoryStore, Staging
from todo_core.user_settings import UserSettings


class InMemorySettingsRepository:
    def __init__(self, store: InMemoryStore, view: Staging) -> None:
        self._store = store
        self._view = view

    async def get(self, user_id: str) -> UserSettings:
        if user_id in self._view.settings:
            return self._view.settings[user_id]
        return self._store.settings.get(user_id, UserSettings())

    async def put(self, user_id: str, settings: UserSettings) -> None:
        self._view.settings[user_id] = settings
