"""The settings repository contract, on every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Backend, UnitOfWorkFactory
from todo_core.sync import START
from todo_core.user_settings import UserSettings


async def saved(uow_factory: UnitOfWorkFactory, user_id: str, settings: UserSettings) -> None:
    async with uow_factory() as uow:
        await uow.settings.put(user_id, settings)
        await uow.commit()


async def settings_of(uow_factory: UnitOfWorkFactory, user_id: str) -> UserSettings:
    async with uow_factory() as uow:
        return await uow.settings.get(user_id)


async def test_a_user_who_saved_nothing_has_the_defaults(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    assert await settings_of(uow_factory, new_user()) == UserSettings(time_zone="UTC")


async def test_saved_settings_read_back_and_a_second_save_replaces_them(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    await saved(backend.uow_factory, user, UserSettings(time_zone="Europe/Berlin"))
    assert await settings_of(backend.uow_factory, user) == UserSettings(time_zone="Europe/Berlin")
    await saved(backend.uow_factory, user, UserSettings(time_zone="America/Argentina/ComodRivadavia"))
    assert await settings_of(backend.reader_factory, user) == UserSettings(time_zone="America/Argentina/ComodRivadavia")
    assert await settings_of(backend.uow_factory, other) == UserSettings()


async def test_settings_not_committed_are_not_saved_but_seen_by_their_own_unit_of_work(
    uow_factory: UnitOfWorkFactory, new_user: Callable[[], str]
) -> None:
    user = new_user()
    async with uow_factory() as uow:
        await uow.settings.put(user, UserSettings(time_zone="Asia/Tokyo"))
        assert await uow.settings.get(user) == UserSettings(time_zone="Asia/Tokyo")
    assert await settings_of(uow_factory, user) == UserSettings()


async def test_saving_settings_is_no_change_for_sync(backend: Backend, new_user: Callable[[], str]) -> None:
    user = new_user()
    before = (await backend.feed.changes(user, START, 10)).log
    await saved(backend.uow_factory, user, UserSettings(time_zone="Asia/Tokyo"))
    assert (await backend.feed.changes(user, START, 10)).log.seq == before.seq
