"""A calendar that costs nothing while unchanged: its ETag comes from the user's change number, a
conditional GET answers 304 without reading a task, a rendered calendar is reused until the user's
data changes (and never served to anyone else), and what a calendar holds is bounded."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest
from dependency_injector import providers
from fastapi import FastAPI

from tests.api.test_calendar_api import feed_path, new_feed, todos_by_uid
from tests.conftest import SQL_BACKENDS, TEST_SECRET, Caller, SqlStore, build_app
from tests.domain.conftest import FixedClock
from tests.sent_statements import SentStatements
from todo_api.calendars import RenderedCalendars


@pytest.fixture(params=SQL_BACKENDS)
def app(request: pytest.FixtureRequest) -> FastAPI:
    """An app of the test's own (not the module's shared one): the test counts what it did."""
    application, _ = build_app(request.getfixturevalue(f"{request.param}_store"))
    return application


#: A statement that reads (or writes) a table of tasks, categories or tags.
TASK_DATA = re.compile(r"\b(tasks|task_tags|categories)\b", re.IGNORECASE)


def renders(app: FastAPI) -> int:
    """How many calendars the app has rendered so far."""
    calendars: RenderedCalendars = app.state.container.calendars()
    return calendars.renders


async def fetched(caller: Caller, etag: str | None = None, **params: str) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return await caller.request("GET", "/calendar.ics", params=params, headers=headers)


def summaries(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [str(todo["SUMMARY"]) for todo in icalendar.Calendar.from_ical(response.content).walk("VTODO")]


async def test_a_conditional_get_answers_304_without_reading_a_task(
    alice: Caller, client: httpx.AsyncClient, sent_statements: SentStatements
) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Home"})).json()
    await alice.create_task(title="Water the plants", category_id=category["id"], due_at="2026-03-27T08:00:00Z")
    feed = feed_path(await new_feed(alice))
    for path, headers in (("/api/" + alice.id + "/calendar.ics", alice.headers), (feed, {})):
        with sent_statements.capturing() as first:
            served = await client.get(path, headers=headers)
        assert served.status_code == 200
        assert any(TASK_DATA.search(sql) for sql in first), first  # what a render reads, seen here

        with sent_statements.capturing() as conditional:
            again = await client.get(path, headers={**headers, "If-None-Match": served.headers["etag"]})
        assert again.status_code == 304 and again.headers["etag"] == served.headers["etag"]
        assert conditional, "the change number is read"
        assert not [sql for sql in conditional if TASK_DATA.search(sql)]
        assert all(re.search(r"\b(user_changes|calendar_feeds)\b", sql) for sql in conditional), conditional
        assert len(conditional) == (1 if path.endswith("/calendar.ics") and "/api/" in path else 2)


async def test_each_kind_of_change_gives_a_new_calendar_and_etag(app: FastAPI, alice: Caller) -> None:
    home = (await alice.request("POST", "/categories", json={"name": "Home"})).json()
    task = await alice.create_task(title="Water the plants", category_id=home["id"])
    first = await fetched(alice, status="all")
    tag, seen = first.headers["etag"], [first.headers["etag"]]

    async def after(change: Callable[[], object], *, check: Callable[[icalendar.Todo | None], bool]) -> None:
        nonlocal tag
        response = await change()  # type: ignore[misc]
        assert response.status_code < 300, response.text
        changed = await fetched(alice, tag, status="all")
        assert changed.status_code == 200, "the old ETag must not get a 304 after a change"
        assert changed.headers["etag"] not in seen
        todo = todos_by_uid(icalendar.Calendar.from_ical(changed.content)).get(task["id"])
        assert check(todo), changed.text  # the new calendar, not the one rendered before
        tag = changed.headers["etag"]
        seen.append(tag)
        assert (await fetched(alice, tag, status="all")).status_code == 304

    path = f"/tasks/{task['id']}"
    await after(
        lambda: alice.request("POST", "/tasks", json={"title": "Another"}),
        check=lambda todo: todo is not None,
    )
    await after(
        lambda: alice.request("PATCH", path, json={"title": "Water the roses"}),
        check=lambda todo: todo is not None and todo["SUMMARY"] == "Water the roses",
    )
    await after(
        lambda: alice.request("PATCH", f"/categories/{home['id']}", json={"name": "Garden"}),
        check=lambda todo: todo is not None and list(todo.categories) == ["Garden"],
    )
    await after(
        lambda: alice.request("DELETE", f"/categories/{home['id']}"),
        check=lambda todo: todo is not None and "CATEGORIES" not in todo,
    )
    await after(
        lambda: alice.request("PATCH", f"{path}/complete", json={"completed": True}),
        check=lambda todo: todo is not None and todo["STATUS"] == "COMPLETED",
    )
    await after(lambda: alice.request("DELETE", path), check=lambda todo: todo is None)
    assert renders(app) == len(seen)


async def test_a_calendar_is_rendered_once_while_nothing_changes(app: FastAPI, alice: Caller) -> None:
    await alice.create_task(title="Open", due_at="2026-03-27T08:00:00Z", time_zone="Europe/Berlin")
    bodies = [(await fetched(alice)).content for _ in range(3)]
    assert bodies[0] == bodies[1] == bodies[2] and renders(app) == 1

    await alice.create_task(title="Another")
    together = await asyncio.gather(*(fetched(alice) for _ in range(6)))
    assert {response.content for response in together} == {together[0].content}
    assert summaries(together[0]) == ["Open", "Another"]
    assert renders(app) == 2, "requests that come together share one render"
    assert (await fetched(alice, status="all")).status_code == 200 and renders(app) == 3  # another selection


async def test_a_users_calendar_is_never_served_to_another(app: FastAPI, alice: Caller, bob: Caller) -> None:
    await alice.create_task(title="Alice's")
    await bob.create_task(title="Bob's")  # the same change number as Alice's: each user made one change
    alices = await fetched(alice)
    bobs = await fetched(bob)
    assert summaries(alices) == ["Alice's"] and summaries(bobs) == ["Bob's"]
    assert alices.headers["etag"] != bobs.headers["etag"]
    with_alices_tag = await fetched(bob, alices.headers["etag"])
    assert with_alices_tag.status_code == 200 and summaries(with_alices_tag) == ["Bob's"]
    assert summaries(await fetched(alice)) == ["Alice's"]
    feed = await new_feed(bob)
    assert summaries(await bob.client.get(feed_path(feed))) == ["Bob's"]


async def test_the_feed_link_opens_as_a_subscription(alice: Caller, client: httpx.AsyncClient) -> None:
    feed = await new_feed(alice)
    assert feed["webcal_url"] == "webcal://" + feed["url"].removeprefix("http://")
    assert feed["webcal_url"].startswith("webcal://testserver/feeds/") and feed["webcal_url"].endswith(".ics")
    # What a calendar app does with it: the same link over HTTP(S).
    assert (await client.get("http://" + feed["webcal_url"].removeprefix("webcal://"))).status_code == 200


@pytest.fixture(params=SQL_BACKENDS)
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0))


@pytest.fixture
async def bounded(
    store: SqlStore, clock: FixedClock, new_user: Callable[[], str]
) -> AsyncIterator[tuple[Caller, FixedClock]]:
    """A user of an app whose calendars hold at most 5 tasks, completed ones for 10 days."""
    app, container = build_app(store, calendar_max_tasks=5, calendar_completed_days=10)
    container.clock.override(providers.Object(clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Caller(http, new_user()), clock


async def test_a_calendar_holds_the_open_tasks_due_soonest_up_to_its_bound(
    bounded: tuple[Caller, FixedClock],
) -> None:
    user, _ = bounded
    for title, due in [
        ("undated first", None),
        ("in a week", "2026-06-08T09:00:00Z"),
        ("tomorrow", "2026-06-02T09:00:00Z"),
        ("undated second", None),
        ("next month", "2026-07-01T09:00:00Z"),
        ("today, all day", "2026-06-01"),
        ("undated third", None),
    ]:
        fields = {"due_date": due} if due and len(due) == 10 else {"due_at": due} if due else {}
        await user.create_task(title=title, **fields)
    await user.create_task(title="done", completed=True)

    assert summaries(await fetched(user)) == ["today, all day", "tomorrow", "in a week", "next month", "undated first"]
    assert summaries(await fetched(user, status="all")) == summaries(await fetched(user))  # open tasks first
    feed = await new_feed(user)
    assert summaries(await user.client.get(feed_path(feed))) == summaries(await fetched(user))


async def test_completed_tasks_are_shown_for_the_days_the_setting_says(bounded: tuple[Caller, FixedClock]) -> None:
    user, clock = bounded
    old = await user.create_task(title="completed 11 days ago")
    await user.request("PATCH", f"/tasks/{old['id']}/complete", json={"completed": True})
    clock.advance(timedelta(days=1))
    for title in ("completed 10 days ago", "edited later"):
        task = await user.create_task(title=title)
        await user.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": True})
    clock.advance(timedelta(days=4))
    await user.request("PATCH", f"/tasks/{task['id']}", json={"description": "changed after"})
    clock.advance(timedelta(days=6))
    await user.create_task(title="open")
    recent = await user.create_task(title="completed today")
    await user.request("PATCH", f"/tasks/{recent['id']}/complete", json={"completed": True})

    expected = ["open", "completed today", "edited later", "completed 10 days ago"]
    assert summaries(await fetched(user, status="all")) == expected
    assert summaries(await fetched(user, status="completed")) == expected[1:]
    assert summaries(await user.client.get(feed_path(await new_feed(user)))) == expected

    # A day later the window has moved, with no change of the user's: a new ETag for calendars
    # that show completed tasks, the same for those that do not.
    pending, every = await fetched(user), await fetched(user, status="all")
    clock.advance(timedelta(days=1))
    assert (await fetched(user, pending.headers["etag"])).status_code == 304
    moved = await fetched(user, every.headers["etag"], status="all")
    # Both were completed 11 days ago now: a later edit does not keep a task in the window.
    assert moved.status_code == 200 and summaries(moved) == ["open", "completed today"]


async def test_a_calendar_of_more_tasks_than_its_bound_holds_exactly_the_bound(
    bounded: tuple[Caller, FixedClock],
) -> None:
    user, clock = bounded
    for day in range(12, 0, -1):
        await user.create_task(title=f"day {day}", due_at=f"2026-06-{day:02}T09:00:00Z")
    for n in range(3):
        await user.create_task(title=f"completed {n}", completed=True)
        clock.advance(timedelta(minutes=1))
    assert summaries(await fetched(user)) == [f"day {day}" for day in range(1, 6)]
    assert summaries(await fetched(user, status="completed")) == [f"completed {n}" for n in (2, 1, 0)]


#: Fetches one calendar from a fresh process (its own hash seed) and prints its ETag and digest.
_FETCH_IN_ANOTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, hashlib, sys
    import httpx
    from todo_adapters.auth import mint_token
    from todo_api.app import create_app
    from todo_api.settings import Settings

    url, secret, user = sys.argv[1:4]

    async def main():
        app = create_app(Settings(database_url=url, jwt_secret=secret, _env_file=None))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                headers = {"Authorization": "Bearer " + mint_token(secret, user)}
                response = await http.get(f"/api/{user}/calendar.ics", headers=headers)
                assert response.status_code == 200, response.text
                print(response.headers["etag"], hashlib.sha256(response.content).hexdigest())

    asyncio.run(main())
    """
)


async def test_the_same_calendar_has_the_same_bytes_and_etag_in_every_process(
    sqlite_store: SqlStore, new_user: Callable[[], str]
) -> None:
    app, _ = build_app(sqlite_store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        user = Caller(http, new_user())
        for zone in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo", "Etc/GMT+5"):
            await user.create_task(title=zone, due_at="2026-06-01T09:00:00Z", time_zone=zone)
        here = await fetched(user)
    expected = f"{here.headers['etag']} {hashlib.sha256(here.content).hexdigest()}"

    def fetch(seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", _FETCH_IN_ANOTHER_PROCESS, sqlite_store.url, TEST_SECRET, user.id]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    answers = await asyncio.gather(*(asyncio.to_thread(fetch, seed) for seed in ("1", "2", "3")))
    assert answers == [expected] * 3


async def test_rendering_leaves_the_event_loop_free_for_other_requests(
    sqlite_store: SqlStore, new_user: Callable[[], str]
) -> None:
    app, _ = build_app(sqlite_store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        user = Caller(http, new_user())
        zones = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")
        for batch in range(10):
            operations = [
                {
                    "op": "create",
                    "body": {
                        "title": f"Task {batch}-{n}",
                        "due_at": f"2026-06-{n % 28 + 1:02}T09:00:00Z",
                        "time_zone": zones[n % 3],
                        "recurrence": "FREQ=WEEKLY;BYDAY=FR",
                        "remind_at": "2026-05-01T08:00:00Z",
                        "tags": ["home", "work"],
                    },
                }
                for n in range(100)
            ]
            assert (await user.request("POST", "/batch", json={"operations": operations})).status_code == 200

        await asyncio.to_thread(lambda: None)  # the loop's worker thread, made before the measure
        # The app runs on this test's event loop: a ticker on it sees every stretch of time the
        # loop spends on something that does not await.
        gaps: list[float] = []
        rendering = True

        async def tick() -> None:
            last = asyncio.get_running_loop().time()
            while rendering:
                await asyncio.sleep(0.002)
                now = asyncio.get_running_loop().time()
                gaps.append(now - last)
                last = now

        # Garbage collections in the loop's worker threads (`asyncio.to_thread`'s, where renders
        # run): a full one holds the GIL, and so the loop, for as long as it scans the heap.
        in_workers: list[int] = []

        def collected(phase: str, info: dict[str, int]) -> None:
            if phase == "start" and threading.current_thread().name.startswith("asyncio_"):
                in_workers.append(info["generation"])

        # This process's heap (pytest, every fixture) would make any full collection, wherever it
        # runs, longer than a render: frozen, as it is not what is measured.
        gc.collect()
        gc.freeze()
        gc.callbacks.append(collected)
        try:
            ticker = asyncio.create_task(tick())
            started = asyncio.get_running_loop().time()
            response = await fetched(user)
            took = asyncio.get_running_loop().time() - started
            rendering = False
            await ticker
        finally:
            gc.callbacks.remove(collected)
            gc.unfreeze()
    assert response.status_code == 200 and response.content.count(b"BEGIN:VTODO") == 1000
    # Rendering 1,000 tasks takes most of the request; on the loop, one gap would be nearly all of it.
    assert max(gaps) < took / 4, (max(gaps), took)
    # None while it renders; at most the one of young objects when the collector is back on.
    assert in_workers in ([], [0]), f"a render sets off no garbage collection: {in_workers}"
