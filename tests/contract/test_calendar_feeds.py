"""Calendar feeds and erasing an account, on every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import uuid4

import pytest

from tests.conftest import Backend
from tests.contract.test_sync import parsed
from tests.domain.conftest import FixedClock
from todo_core import calendar_feed
from todo_core.category import CategoryFields
from todo_core.commands import run
from todo_core.errors import NotFound, SyncExpired, ValidationFailed
from todo_core.idempotency import Answer
from todo_core.query import Status, TaskQuery
from todo_core.sync import START
from todo_core.task import TaskFields
from todo_core.use_cases.account import erase_account
from todo_core.use_cases.calendar import (
    CalendarBounds,
    CalendarTasks,
    calendar_selection,
    calendar_tasks,
    change_number,
    create_feed,
    feed_owner,
    list_feeds,
    revoke_feed,
)
from todo_core.use_cases.categories import create_category
from todo_core.use_cases.sync import changes_since
from todo_core.use_cases.tasks import create_task, delete_task
from todo_core.user_settings import UserSettings


async def test_a_feeds_secret_opens_it_and_only_its_hash_is_stored(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user = new_user()
    issued = await run(backend.uow_factory(), create_feed, FixedClock(), user)
    assert await feed_owner(backend.reader_factory(), issued.secret) == user
    (listed,) = await list_feeds(backend.reader_factory(), user)
    assert listed == issued.feed
    assert issued.secret.encode() not in listed.secret_hash and listed.secret_hash == calendar_feed.secret_hash(
        issued.secret
    )


async def test_a_revoked_feed_is_not_found_like_one_that_never_existed(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user = new_user()
    kept = await run(backend.uow_factory(), create_feed, FixedClock(), user)
    revoked = await run(backend.uow_factory(), create_feed, FixedClock(), user)
    await run(backend.uow_factory(), revoke_feed, user, revoked.feed.id)
    never = calendar_feed.issue(user, FixedClock().now()).secret
    strange = ("", ".", "not-base64!.x", "AA.x", "_w.x", kept.secret + "x", kept.secret[:-1])  # AA: NUL; _w: not UTF-8
    for secret in (revoked.secret, never, *strange):
        with pytest.raises(NotFound):
            await feed_owner(backend.reader_factory(), secret)
    assert [feed.id for feed in await list_feeds(backend.reader_factory(), user)] == [kept.feed.id]
    with pytest.raises(NotFound):
        await run(backend.uow_factory(), revoke_feed, user, revoked.feed.id)


async def test_a_secret_with_another_users_id_in_front_opens_nothing(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    alice, mallory = new_user(), new_user()
    issued = await run(backend.uow_factory(), create_feed, FixedClock(), alice)
    _, _, random_part = issued.secret.partition(".")
    forged = f"{calendar_feed.issue(mallory, FixedClock().now()).secret.partition('.')[0]}.{random_part}"
    with pytest.raises(NotFound):
        await feed_owner(backend.reader_factory(), forged)
    with pytest.raises(NotFound):
        await run(backend.uow_factory(), revoke_feed, mallory, issued.feed.id)


async def test_the_calendar_reads_every_task_in_pages(backend: Backend, new_user: Callable[[], str]) -> None:
    user, other = new_user(), new_user()
    clock = FixedClock()
    category = await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Home"))
    made = []
    for n in range(5):
        clock.advance(timedelta(seconds=1))
        due = clock.now() + timedelta(days=5 - n)  # the calendar lists open tasks soonest due first
        made.insert(0, await run(backend.uow_factory(), create_task, clock, user, TaskFields(f"Task {n}", due_at=due)))
    clock.advance(timedelta(seconds=1))
    done = await run(
        backend.uow_factory(), create_task, clock, user, TaskFields("Done", completed=True, category_id=category.id)
    )
    await run(backend.uow_factory(), create_task, clock, other, TaskFields("Not theirs"))
    reader = backend.reader_factory()

    async def shown(status: Status, max_tasks: int = 100) -> CalendarTasks:
        selection = calendar_selection(status, CalendarBounds(max_tasks=max_tasks), clock.now())
        return await calendar_tasks(backend.views, reader, user, selection, page_size=2)

    everything, pending = await shown(Status.ALL), await shown(Status.PENDING)
    ids = [str(view["id"]) for view in parsed(everything.tasks)]
    assert ids == [str(task.id) for task in [*made, done]]  # open tasks, then done
    assert [str(view["id"]) for view in parsed(pending.tasks)] == [str(task.id) for task in made]
    assert everything.category_names == {category.id: "Home"}
    assert [str(view["id"]) for view in parsed((await shown(Status.ALL, 3)).tasks)] == ids[:3]


async def test_the_change_number_moves_with_each_change_of_the_users_data_only(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    clock = FixedClock()
    assert await change_number(backend.feed, user) == 0
    task = await run(backend.uow_factory(), create_task, clock, user, TaskFields("One"))
    await run(backend.uow_factory(), create_category, clock, user, CategoryFields("Home"))
    assert await change_number(backend.feed, user) == 2
    await run(backend.uow_factory(), create_task, clock, other, TaskFields("Not theirs"))
    await run(backend.uow_factory(), create_feed, clock, user)  # not synced data: no number
    assert await change_number(backend.feed, user) == 2
    await run(backend.uow_factory(), delete_task, clock, user, task.id)
    assert await change_number(backend.feed, user) == 3 == (await changes_since(backend.feed, user, None, 1)).log.seq


async def test_erasing_an_account_leaves_nothing_of_it_and_everything_of_others(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user, other = new_user(), new_user()
    clock = FixedClock()
    for owner in (user, other):
        category = await run(backend.uow_factory(), create_category, clock, owner, CategoryFields("Home"))
        await run(
            backend.uow_factory(), create_task, clock, owner, TaskFields("Kept", tags=("a",), category_id=category.id)
        )
        gone = await run(backend.uow_factory(), create_task, clock, owner, TaskFields("Deleted"))
        await run(backend.uow_factory(), delete_task, clock, owner, gone.id)
        await run(backend.uow_factory(), create_feed, clock, owner)
        async with backend.uow_factory() as uow:
            await uow.settings.put(owner, UserSettings(time_zone="Asia/Tokyo"))
            await uow.idempotency.claim(owner, "key", "print", now=clock.now(), expired_before=clock.now())
            await uow.idempotency.record(owner, "key", Answer(201, (), b"{}"))
            await uow.commit()
    before_other = await _everything_of(backend, other)
    old_token = (await changes_since(backend.feed, user, None, 100)).next

    await run(backend.uow_factory(), erase_account, user, confirm=user)

    assert await _everything_of(backend, user) == _NOTHING
    assert await _everything_of(backend, other) == before_other
    async with backend.uow_factory() as uow:  # the key is free again: a new claim gets nothing recorded
        assert await uow.idempotency.claim(user, "key", "other", now=clock.now(), expired_before=clock.now()) is None
    with pytest.raises(SyncExpired):
        await changes_since(backend.feed, user, old_token, 100)
    # A snapshot starts afresh; what the user does next syncs as usual.
    fresh = (await changes_since(backend.feed, user, None, 100)).next
    await run(backend.uow_factory(), create_task, clock, user, TaskFields("After"))
    page = await changes_since(backend.feed, user, fresh, 100)
    assert [view["title"] for view in parsed(page.tasks)] == ["After"]
    with pytest.raises(SyncExpired):  # however many changes follow, the old token stays void
        await changes_since(backend.feed, user, old_token, 100)


async def test_an_account_is_erased_only_with_its_own_id_as_confirmation(
    backend: Backend, new_user: Callable[[], str]
) -> None:
    user = new_user()
    await run(backend.uow_factory(), create_task, FixedClock(), user, TaskFields("Kept"))
    for confirm in (None, "", user.upper(), new_user(), f"{user} "):
        with pytest.raises(ValidationFailed):
            await run(backend.uow_factory(), erase_account, user, confirm=confirm)
    assert len((await backend.views.list_for_user(user, TaskQuery())).items) == 1


async def test_erasing_an_account_nobody_used_is_harmless(backend: Backend) -> None:
    user = f"never-seen-{uuid4().hex}"
    await run(backend.uow_factory(), erase_account, user, confirm=user)
    assert await _everything_of(backend, user) == _NOTHING


_NOTHING: dict[str, object] = {"tasks": [], "categories": [], "tags": [], "feeds": [], "settings": UserSettings()}


async def _everything_of(backend: Backend, user: str) -> dict[str, object]:
    """What the ports show of a user (the SQL tables are checked one by one over HTTP)."""
    async with backend.reader_factory() as uow:
        found: dict[str, object] = {
            "tasks": parsed((await backend.views.list_for_user(user, TaskQuery())).items),
            "categories": list(await uow.categories.list_for_user(user)),
            "tags": list(await uow.tasks.tag_counts(user)),
            "feeds": list(await uow.feeds.list_for_user(user)),
            "settings": await uow.settings.get(user),
        }
    page = await backend.feed.changes(user, START, 100)
    if page.deleted_tasks or page.deleted_categories:
        found["deleted"] = [*page.deleted_tasks, *page.deleted_categories]
    return found
