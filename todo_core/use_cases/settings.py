"""Use cases on a user's settings."""

from __future__ import annotations

from todo_core.ports import UnitOfWork
from todo_core.user_settings import UserSettings


async def get_settings(uow: UnitOfWork, user_id: str) -> UserSettings:
    """The user's settings; the defaults for a user who never saved any."""
    async with uow:
        return await uow.settings.get(user_id)


async def replace_settings(uow: UnitOfWork, user_id: str, settings: UserSettings) -> UserSettings:
    """Save the user's settings. Existing tasks keep their own time zone: the setting is the
    zone of the tasks created (or given a null zone) from now on.

    :raises ValidationFailed: a setting breaks a rule (an unknown time zone).
    """
    settings = settings.validated()
    await uow.settings.put(user_id, settings)
    return settings
