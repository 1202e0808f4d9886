"""The calendar read by the parsers calendar apps use, not by `icalendar` (which wrote it and
forgives everything): ical.js (Thunderbird) and libical 3 (GNOME Evolution, through
libical-glib). On a corpus made through the API, each must report no error, and read the DUE
instants, the reminders and the first five occurrences the service itself computes, 2038 and
later included. One process of each parser per calendar."""

from __future__ import annotations

import json
import os
import subprocess
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest

from tests.conftest import Caller
from tests.interop.conftest import INTEROP_DIR, install_node_modules, node_executable
from todo_api.vtimezone import vtimezone
from todo_core import recurrence, time_zones

pytestmark = pytest.mark.slow  # starts Node and the system Python

SYSTEM_PYTHON = "/usr/bin/python3"
PARSE_TIMEOUT_SECONDS = 60
CONTROLS = "".join(chr(code) for code in (*range(1, 9), 11, 12, *range(14, 32), 127))
ZONE_SAMPLES_2038_ON = (datetime(2038, 1, 10, 12), datetime(2038, 7, 10, 12), datetime(2099, 7, 10, 12))
LONG = ("Lorem ipsum, dolor; sit\\amet ✓ 日本語 " * 200)[:5000]


def _unavailable(reason: str) -> None:
    if os.environ.get("TODO_REQUIRE_INTEROP") == "1":
        pytest.fail(f"calendar parser required but unavailable: {reason}")
    pytest.skip(f"calendar parser unavailable: {reason} (set TODO_REQUIRE_INTEROP=1 to fail)")


@pytest.fixture(scope="session")
def libical() -> str:
    """The system Python, when it can load libical-glib (`make test` installs it)."""
    probe = [
        SYSTEM_PYTHON,
        "-c",
        "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib",
    ]
    try:
        loaded = subprocess.run(probe, capture_output=True, timeout=PARSE_TIMEOUT_SECONDS, check=False)
    except OSError as error:
        _unavailable(f"{SYSTEM_PYTHON}: {error}")
    if loaded.returncode != 0:
        _unavailable(f"libical-glib does not load (apt-get install gir1.2-ical-3.0 python3-gi): {loaded.stderr!r}")
    return SYSTEM_PYTHON


@pytest.fixture(scope="session")
def icaljs() -> str:
    node = node_executable()
    install_node_modules(INTEROP_DIR)
    return node


def readings(body: bytes, node: str, python: str) -> dict[str, dict[str, Any]]:
    """What each parser read in `body`: both run at once, one process each."""
    commands = {
        "ical.js": [node, "read_calendar.mjs"],
        "libical": [python, str(Path(INTEROP_DIR) / "read_calendar_libical.py")],
    }
    with ThreadPoolExecutor(len(commands)) as pool:
        done = dict(zip(commands, pool.map(lambda command: _run(command, body), commands.values()), strict=True))
    for parser, finished in done.items():
        assert finished.returncode == 0, f"{parser}: {finished.stderr.decode()}"
    return {parser: json.loads(finished.stdout) for parser, finished in done.items()}


def _run(command: list[str], body: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command, input=body, cwd=INTEROP_DIR, capture_output=True, timeout=PARSE_TIMEOUT_SECONDS, check=False
    )


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _moment(due: datetime | date) -> int | str:
    return int(due.timestamp()) if isinstance(due, datetime) else due.isoformat()


def expected_occurrences(task: dict[str, Any]) -> list[int | str]:
    """The first five dates the service gives the series (todo_core.recurrence steps them)."""
    rule = recurrence.parse(task["recurrence"])
    assert isinstance(rule, recurrence.Recurrence)
    due: datetime | date = (
        date.fromisoformat(task["due_date"]) if task["due_date"] else datetime.fromisoformat(task["due_at"])
    )
    found = [_moment(due)]
    while len(found) < 5:
        following = recurrence.next_occurrence(rule, due, task["time_zone"])
        if following is None:
            break
        due, rule = following
        found.append(_moment(due))
    return found


def clean(text: str) -> str:
    """What a TEXT value can carry (RFC 5545 §3.3.11): the control characters other than
    HTAB and the line break are gone; CR LF is a line break."""
    return "".join(c for c in text.replace("\r\n", "\n").replace("\r", "\n") if c not in CONTROLS)


async def build_corpus(alice: Caller) -> list[dict[str, Any]]:
    category = (await alice.request("POST", "/categories", json={"name": "Work, home; rest"})).json()
    made = []

    async def task(**fields: Any) -> dict[str, Any]:
        made.append(await alice.create_task(**fields))
        return made[-1]

    await task(
        title="Escapes, commas; semicolons \\ backslashes\nand a new line",
        description="Line one\r\nline two\nemoji 🎉👩‍👩‍👧 and CJK 漢字かなカナ한글",
        tags=["a,b", "c;d", "e\\f"],
        category_id=category["id"],
    )
    await task(title=f"Controls{CONTROLS}end\tand a tab", description=f"x{CONTROLS}y", remind_at="2026-12-11T08:30:00Z")
    await task(title="Long", description=LONG)
    # Daily across both of Berlin's changes, with a reminder each.
    spring = await task(
        title="Spring",
        due_at="2026-03-27T08:00:00Z",
        remind_at="2026-03-27T07:30:00Z",
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
    )
    await task(
        title="Autumn", due_at="2026-10-23T07:00:00Z", recurrence="FREQ=DAILY;COUNT=8", time_zone="Europe/Berlin"
    )
    await task(
        title="Weekly",
        due_at="2026-10-28T13:00:00Z",
        recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=10",
        time_zone="America/New_York",
        remind_at="2026-11-02T13:00:00Z",
    )
    await task(
        title="Last Friday",
        due_at="2026-09-24T23:00:00Z",
        recurrence="FREQ=MONTHLY;BYDAY=-1FR",
        time_zone="Australia/Lord_Howe",
    )
    await task(
        title="31st", due_at="2027-01-31T14:00:00Z", recurrence="FREQ=MONTHLY;BYMONTHDAY=31", time_zone="Etc/GMT+5"
    )
    await task(
        title="Until a day", due_date="2026-12-28", recurrence="FREQ=DAILY;UNTIL=20261231", time_zone="Europe/Berlin"
    )
    await task(
        title="Until a day, New York",
        due_date="2026-12-28",
        recurrence="FREQ=DAILY;UNTIL=20261231",
        time_zone="America/New_York",
    )
    await task(  # 21:00 on the 31st at -05 is already the 1st in UTC
        title="Until a day, timed",
        due_at="2026-12-30T02:00:00Z",
        recurrence="FREQ=DAILY;UNTIL=20261231",
        time_zone="Etc/GMT+5",
    )
    await task(
        title="Until an instant",
        due_date="2026-12-28",
        recurrence="FREQ=DAILY;UNTIL=20261230T230000Z",
        time_zone="Europe/Berlin",
    )
    await task(
        title="Until, timed",
        due_at="2026-12-30T08:00:00Z",
        recurrence="FREQ=DAILY;UNTIL=20270102T080000Z",
        time_zone="Europe/Berlin",
    )
    await task(title="All day", due_date="2026-12-24", remind_at="2026-12-23T17:00:00Z", time_zone="Europe/Berlin")
    await task(title="UTC", due_at="2026-06-01T12:00:00Z", recurrence="FREQ=WEEKLY", time_zone="UTC")
    # Before New York's rule of today (2007): its VTIMEZONE lists 2004-2006 one RDATE a line.
    await task(title="New York 2004", due_at="2004-01-15T14:00:00Z", time_zone="America/New_York")
    await task(title="New York summer 2006", due_at="2006-07-04T13:00:00Z", time_zone="America/New_York")
    await task(title="New York winter 2006", due_at="2006-12-01T14:00:00Z", time_zone="America/New_York")
    # 2038 and later: summer and winter, north and south.
    await task(
        title="2038 Berlin",
        due_at="2038-07-15T07:00:00Z",
        recurrence="FREQ=MONTHLY",
        time_zone="Europe/Berlin",
        remind_at="2038-07-15T06:00:00Z",
    )
    await task(
        title="2040 New York", due_at="2040-03-08T14:00:00Z", recurrence="FREQ=DAILY", time_zone="America/New_York"
    )
    await task(
        title="2039 Lord Howe", due_at="2039-03-30T22:00:00Z", recurrence="FREQ=WEEKLY", time_zone="Australia/Lord_Howe"
    )
    await task(title="2045 Berlin", due_at="2045-10-27T08:00:00Z", time_zone="Europe/Berlin")
    # A subtask, and one whose parent is completed (not in the pending calendar).
    parent = await task(title="Parent", due_at="2026-12-20T10:00:00Z", time_zone="Europe/Berlin")
    await task(title="Child", parent_id=parent["id"])
    done_child = await task(title="Done child", parent_id=parent["id"])  # its parent is open
    done = await alice.request("PATCH", f"/tasks/{done_child['id']}/complete", json={"completed": True})
    assert done.status_code == 200, done.text
    done_parent = await task(title="Done parent")
    await task(title="Orphaned in the feed", parent_id=done_parent["id"])
    done = await alice.request("PATCH", f"/tasks/{done_parent['id']}/complete", json={"completed": True})
    assert done.status_code == 200, done.text
    # A completed repeating task: its series goes on in its successor.
    completed = await alice.request("PATCH", f"/tasks/{spring['id']}/complete", json={"completed": True})
    assert completed.status_code == 200, completed.text
    response = await alice.request("GET", "/tasks", params={"status": "all", "limit": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    assert len(items) == len(made) + 1
    return items


def check(reading: dict[str, Any], tasks: list[dict[str, Any]], category: str) -> None:
    assert reading["errors"] == []
    ids = {task["id"] for task in tasks}
    assert set(reading["todos"]) == ids
    for task in tasks:
        todo = reading["todos"][task["id"]]
        what = task["title"]
        assert todo["summary"] == clean(task["title"]), what
        assert todo["description"] == (clean(task["description"]) if task["description"] else None), what
        assert todo["categories"] == [*task["tags"], *([category] if task["category_id"] else [])], what
        assert todo["related_to"] == (task["parent_id"] if task["parent_id"] in ids else None), what
        due = task["due_date"] or (_seconds(task["due_at"]) if task["due_at"] else None)
        assert todo["due"] == due, what
        assert todo["alarms"] == ([_seconds(task["remind_at"])] if task["remind_at"] else []), what
        if task["recurrence"] and not task["completed"]:
            assert todo["occurrences"] == expected_occurrences(task), what
        else:
            assert todo["occurrences"] is None, what


async def test_both_parsers_read_every_task_as_the_service_computes_it(
    alice: Caller, icaljs: str, libical: str
) -> None:
    tasks = await build_corpus(alice)
    feed = (await alice.request("POST", "/calendar-feeds")).json()
    all_tasks = await alice.request("GET", "/calendar.ics", params={"status": "all"})
    completed = await alice.request("GET", "/calendar.ics", params={"status": "completed"})
    pending = await alice.request("GET", "/calendar.ics")
    subscribed = await alice.client.get(urlsplit(feed["url"]).path)  # open and lately completed
    assert all_tasks.status_code == completed.status_code == pending.status_code == subscribed.status_code == 200

    for body, shown in (
        (all_tasks.content, tasks),
        (completed.content, [task for task in tasks if task["completed"]]),
        (pending.content, [task for task in tasks if not task["completed"]]),
        (subscribed.content, tasks),
    ):
        for parser, reading in readings(body, icaljs, libical).items():
            try:
                check(reading, shown, "Work, home; rest")
            except AssertionError as error:
                raise AssertionError(f"{parser}: {error}") from error


def test_every_zone_reads_as_zoneinfo_gives_it(icaljs: str, libical: str) -> None:
    """Each zone's VTIMEZONE, made from 2000 on (irregular history, then the rule of today),
    read by both parsers: a noon in winter and summer, 2038 and later included, is the instant
    `zoneinfo` (and so the service) makes of it. Built without the API: one task in each of the
    ~600 zones would take longer than the rest of this file."""
    since = datetime(2000, 1, 1, tzinfo=UTC)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//todo//zone test//EN")
    calendar.add("version", "2.0")
    zones = sorted(zoneinfo.available_timezones() - {"UTC"})
    for zone in zones:
        calendar.add_component(vtimezone(zone, since))
    expected = {}
    for zone in zones:
        for wall in (datetime(2000, 1, 10, 12), datetime(2010, 7, 10, 12), *ZONE_SAMPLES_2038_ON):
            todo = icalendar.Todo()
            todo.add("uid", f"{zone} {wall}")
            todo.add("dtstamp", since)
            todo.add("due", wall.replace(tzinfo=zoneinfo.ZoneInfo(zone)))
            calendar.add_component(todo)
            expected[f"{zone} {wall}"] = int(time_zones.instant_of_wall_time(wall, zone).timestamp())

    for parser, reading in readings(calendar.to_ical(), icaljs, libical).items():
        assert reading["errors"] == [], parser
        wrong = {uid: todo["due"] for uid, todo in reading["todos"].items() if todo["due"] != expected[uid]}
        assert wrong == {}, parser
        assert len(reading["todos"]) == len(expected), parser
