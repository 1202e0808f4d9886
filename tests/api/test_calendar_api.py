"""The calendar over HTTP: `calendar.ics`, subscription links and `/feeds/<secret>.ics`, parsed
back with `icalendar` as a calendar app would read them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
from dateutil.rrule import rrulestr

from tests.api.assertions import problem
from tests.conftest import Caller, SqlStore, api_client
from todo_api.ical import MEDIA_TYPE

BERLIN = ZoneInfo("Europe/Berlin")


async def calendar_of(caller: Caller, **params: str) -> icalendar.Calendar:
    response = await caller.request("GET", "/calendar.ics", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPE
    return icalendar.Calendar.from_ical(response.content)


def todos_by_uid(calendar: icalendar.Calendar) -> dict[str, icalendar.Todo]:
    return {str(todo["UID"]): todo for todo in calendar.walk("VTODO")}


async def new_feed(caller: Caller) -> dict[str, Any]:
    response = await caller.request("POST", "/calendar-feeds")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def to_the_second(text: str) -> datetime:
    """An instant of a response as iCalendar writes it: to the second."""
    return datetime.fromisoformat(text).replace(microsecond=0)


def feed_path(feed: dict[str, Any]) -> str:
    return urlsplit(feed["url"]).path


async def test_every_field_of_a_task_is_in_its_vtodo(alice: Caller) -> None:
    category = (await alice.request("POST", "/categories", json={"name": "Home"})).json()
    task = await alice.create_task(
        title="Water the plants",
        description="the ones on the balcony",
        priority="high",
        tags=["garden", "weekly"],
        category_id=category["id"],
        due_at="2026-03-27T08:00:00Z",  # 09:00 in Berlin
        remind_at="2026-03-27T07:30:00Z",
        recurrence="FREQ=DAILY;COUNT=3",
        time_zone="Europe/Berlin",
    )
    await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Water the plants!"})
    task = (await alice.request("GET", f"/tasks/{task['id']}")).json()

    todo = todos_by_uid(await calendar_of(alice))[task["id"]]

    assert todo["SUMMARY"] == "Water the plants!"
    assert todo["DESCRIPTION"] == "the ones on the balcony"
    due = todo.decoded("DUE")
    assert due == datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN) and todo["DUE"].params["TZID"] == "Europe/Berlin"
    assert todo.decoded("DTSTART") == due
    assert todo["PRIORITY"] == 1
    assert list(todo.categories) == ["garden", "weekly", "Home"]
    assert todo["STATUS"] == "NEEDS-ACTION" and "COMPLETED" not in todo
    assert todo.decoded("LAST-MODIFIED") == to_the_second(task["updated_at"])
    assert todo.decoded("CREATED") == to_the_second(task["created_at"])
    assert todo["SEQUENCE"] == task["version"] == 2
    (alarm,) = todo.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm.decoded("TRIGGER") == datetime(2026, 3, 27, 7, 30, tzinfo=UTC)
    # The repeat rule expands, on Berlin's wall clock, to the dates the service steps to: 09:00
    # each day, across the night the clocks go forward.
    rule = rrulestr(todo["RRULE"].to_ical().decode(), dtstart=due)
    assert list(rule) == [datetime(2026, 3, day, 9, 0, tzinfo=BERLIN) for day in (27, 28, 29)]
    completed = (await alice.request("PATCH", f"/tasks/{task['id']}/complete", json={"completed": True})).json()
    following = (await alice.request("GET", f"/tasks/{completed['next_occurrence_id']}")).json()
    assert datetime.fromisoformat(following["due_at"]) == list(rule)[1]


async def test_an_all_day_step_is_due_on_a_date_and_related_to_its_parent(alice: Caller) -> None:
    review = await alice.create_task(
        title="Weekly review", due_date="2026-12-04", recurrence="FREQ=WEEKLY;UNTIL=20261231"
    )
    step = await alice.create_task(title="Empty the inbox", parent_id=review["id"])
    todos = todos_by_uid(await calendar_of(alice))
    parent, child = todos[review["id"]], todos[step["id"]]
    assert parent.decoded("DUE") == date(2026, 12, 4) and not isinstance(parent.decoded("DUE"), datetime)
    assert parent["DUE"].params.get("VALUE") == "DATE"
    assert str(child["RELATED-TO"]) == review["id"]
    assert "RELATED-TO" not in parent
    rule = parent.decoded("RRULE")
    assert rule["UNTIL"] == [date(2026, 12, 31)]  # a date, as DTSTART is
    expanded = rrulestr(parent["RRULE"].to_ical().decode(), dtstart=datetime(2026, 12, 4))
    assert [day.date() for day in expanded] == [date(2026, 12, day) for day in (4, 11, 18, 25)]


async def test_a_completed_task_and_the_priorities_of_others(alice: Caller) -> None:
    done = await alice.create_task(title="Done", completed=True, priority="low", due_at="2026-05-01T10:00:00Z")
    medium = await alice.create_task(title="Medium", priority="medium")
    plain = await alice.create_task(title="Plain")

    todos = todos_by_uid(await calendar_of(alice, status="all"))

    assert todos[done["id"]]["STATUS"] == "COMPLETED"
    assert todos[done["id"]].decoded("COMPLETED") == to_the_second(done["completed_at"])
    assert todos[done["id"]]["PRIORITY"] == 9
    assert todos[done["id"]].decoded("DUE") == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert todos[medium["id"]]["PRIORITY"] == 5
    assert "PRIORITY" not in todos[plain["id"]] and "DUE" not in todos[plain["id"]]
    assert "DESCRIPTION" not in todos[plain["id"]] and "CATEGORIES" not in todos[plain["id"]]
    assert not todos[plain["id"]].walk("VALARM") and "RRULE" not in todos[plain["id"]]


async def test_open_tasks_by_default_every_task_with_status_all(alice: Caller, bob: Caller) -> None:
    open_task = await alice.create_task(title="Open")
    done = await alice.create_task(title="Done", completed=True)
    await bob.create_task(title="Bob's")
    assert set(todos_by_uid(await calendar_of(alice))) == {open_task["id"]}
    assert set(todos_by_uid(await calendar_of(alice, status="all"))) == {open_task["id"], done["id"]}
    assert set(todos_by_uid(await calendar_of(alice, status="completed"))) == {done["id"]}


async def test_a_feed_url_serves_the_calendar_without_a_token(alice: Caller, client: httpx.AsyncClient) -> None:
    await alice.create_task(title="Open")
    feed = await new_feed(alice)
    assert set(feed) == {"id", "url", "webcal_url", "created_at"}
    assert feed["url"].startswith("http://testserver/feeds/") and feed["url"].endswith(".ics")

    served = await client.get(feed_path(feed))
    assert served.status_code == 200 and served.headers["content-type"] == MEDIA_TYPE
    assert served.content == (await alice.request("GET", "/calendar.ics", params={"status": "all"})).content
    assert served.headers["cache-control"] == "private, max-age=300"

    again = await client.get(feed_path(feed), headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == served.headers["etag"]
    await alice.create_task(title="Another")
    changed = await client.get(feed_path(feed), headers={"If-None-Match": served.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != served.headers["etag"]
    assert len(todos_by_uid(icalendar.Calendar.from_ical(changed.content))) == 2


async def test_feeds_are_listed_without_secrets_and_a_revoked_one_is_gone(
    alice: Caller, bob: Caller, client: httpx.AsyncClient
) -> None:
    first, second = await new_feed(alice), await new_feed(alice)
    listed = (await alice.request("GET", "/calendar-feeds")).json()
    assert listed == [
        {"id": first["id"], "created_at": first["created_at"]},
        {k: second[k] for k in ("id", "created_at")},
    ]
    secret = feed_path(first).removeprefix("/feeds/").removesuffix(".ics")
    assert secret not in (await alice.request("GET", "/calendar-feeds")).text
    assert (await bob.request("GET", "/calendar-feeds")).json() == []
    problem(await bob.request("DELETE", f"/calendar-feeds/{first['id']}"), 404)

    assert (await alice.request("DELETE", f"/calendar-feeds/{first['id']}")).status_code == 204
    assert [feed["id"] for feed in (await alice.request("GET", "/calendar-feeds")).json()] == [second["id"]]
    problem(await client.get(feed_path(first)), 404)
    assert (await client.get(feed_path(second))).status_code == 200
    problem(await alice.request("DELETE", f"/calendar-feeds/{first['id']}"), 404)


#: Requests per kind of secret: enough for a median, few enough for a busy machine.
TIMING_ROUNDS = 25
TIMING_BUDGET_SECONDS = 60


async def test_a_revoked_feed_and_one_that_never_existed_get_the_same_404_in_the_same_time(
    alice: Caller, client: httpx.AsyncClient
) -> None:
    revoked = await new_feed(alice)
    await alice.request("DELETE", f"/calendar-feeds/{revoked['id']}")
    live = feed_path(await new_feed(alice))
    never = live[: -len(".ics") - 4] + ("AAAA" if not live.endswith("AAAA.ics") else "BBBB") + ".ics"
    paths = {"revoked": feed_path(revoked), "never": never, "garbage": "/feeds/garbage.ics"}

    answers = {kind: await client.get(path) for kind, path in paths.items()}
    seen = {kind: (r.status_code, r.content, r.headers["content-type"]) for kind, r in answers.items()}
    assert seen == dict.fromkeys(paths, (404, answers["never"].content, "application/problem+json"))

    times: dict[str, list[float]] = {kind: [] for kind in paths}
    deadline = time.monotonic() + TIMING_BUDGET_SECONDS
    for _ in range(TIMING_ROUNDS):  # interleaved, so that the machine's load falls on all alike
        for kind, path in paths.items():
            started = time.perf_counter()
            assert (await client.get(path)).status_code == 404
            times[kind].append(time.perf_counter() - started)
        assert time.monotonic() < deadline, "the machine is too slow to time anything"
    medians = {kind: statistics.median(spent) for kind, spent in times.items()}
    slowest, fastest = max(medians.values()), min(medians.values())
    # Generous: a difference worth measuring over a network would be a database round trip
    # skipped for one kind; noise on a shared machine is well within this.
    assert slowest <= 2 * fastest + 0.002, medians


async def test_the_feed_url_follows_the_public_url_setting_or_the_request(
    sqlite_store: SqlStore, new_user: Callable[[], str]
) -> None:
    store, user = sqlite_store, new_user()
    async with api_client(store, public_url="https://todo.example/api-root/") as http:
        made = await Caller(http, user).request("POST", "/calendar-feeds")
        assert made.json()["url"].startswith("https://todo.example/api-root/feeds/")
        assert (await http.get(urlsplit(made.json()["url"]).path.removeprefix("/api-root"))).status_code == 200
    async with api_client(store) as http:
        http.base_url = httpx.URL("https://behind.proxy:8443")
        made = await Caller(http, user).request("POST", "/calendar-feeds", headers={"Host": "calendar.example"})
        assert made.json()["url"].startswith("https://calendar.example/feeds/")


async def test_a_user_ids_feed_works_whatever_its_characters(caller: Any, client: httpx.AsyncClient) -> None:
    for user_id in ("ünïcødé user", "a.b.c", "x" * 255):
        someone = Caller(client, user_id)
        await someone.create_task(title="Mine", due_at="2026-01-01T00:00:00Z")
        served = await client.get(feed_path(await new_feed(someone)))
        assert served.status_code == 200, user_id
        assert [t["SUMMARY"] for t in icalendar.Calendar.from_ical(served.content).walk("VTODO")] == ["Mine"]


async def test_tasks_due_at_the_ends_of_the_calendar_still_make_one(alice: Caller) -> None:
    # A VTIMEZONE is made from the earliest due instant in its zone: the years 1 and 9999 too.
    for zone in ("Europe/Berlin", "Africa/Cairo", "America/New_York"):
        await alice.create_task(title="First", due_at="0001-01-01T12:00:00Z", time_zone=zone)
        await alice.create_task(title="Last", due_at="9999-12-31T12:00:00Z", time_zone=zone)
    calendar = await calendar_of(alice)
    assert {str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")} == {
        "Europe/Berlin",
        "Africa/Cairo",
        "America/New_York",
    }
