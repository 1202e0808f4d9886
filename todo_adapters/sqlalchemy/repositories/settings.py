"""A user's settings on SQLAlchemy Core (`todo_core.ports.SettingsRepository`)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import BindParameter, bindparam, select, text

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_adapters.sqlalchemy.tables import user_settings
from todo_core.user_settings import UserSettings

_USER: BindParameter[str] = bindparam("user_id")


# The columns of a user's settings are named as `UserSettings`'s fields.
_SETTING_NAMES = [field.name for field in dataclasses.fields(UserSettings)]
_SETTINGS = select(*(user_settings.c[name] for name in _SETTING_NAMES)).where(user_settings.c.user_id == _USER)
# The same text on PostgreSQL and SQLite.
_PUT_SETTINGS = text(
    f"INSERT INTO user_settings (user_id, {', '.join(_SETTING_NAMES)}) "
    f"VALUES (:user_id, {', '.join(':' + name for name in _SETTING_NAMES)}) "
    f"ON CONFLICT (user_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in _SETTING_NAMES)}"
)


class SqlSettingsRepository:
    """A user's settings: not synced data, so saving them takes no change number."""

    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def get(self, user_id: str) -> UserSettings:
        await self._changes.take(user_id)  # before any of the user's rows, as every repository
        rows = await self._sql.rows(_SETTINGS, {"user_id": user_id})
        return UserSettings(*rows[0]) if rows else UserSettings()

    async def put(self, user_id: str, settings: UserSettings) -> None:
        await self._sql.run(_PUT_SETTINGS, {"user_id": user_id, **dataclasses.asdict(settings)})
