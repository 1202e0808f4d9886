"""A user's tasks as an RFC 5545 calendar, one VTODO per task, built with `icalendar`.

Made from the task views the list returns (`todo_core.views`), so a field of the task is
here as soon as it is in the view. Everything written is a function of the tasks alone
(DTSTAMP is the task's last change, as RFC 5545 §3.8.7.2 allows without METHOD): the same
tasks make the same bytes (`todo_api.calendars` makes the ETag).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from icalendar import Alarm, Calendar, Todo, vRecur

from todo_api.representation import json_bytes
from todo_api.vtimezone import vtimezone
from todo_core import time_zones
from todo_core.use_cases.calendar import CalendarTasks

MEDIA_TYPE = "text/calendar; charset=utf-8"
PRODUCT_ID = "-//todo//tasks//EN"
#: RFC 5545 PRIORITY: 1 highest, 9 lowest; a task without a priority has none (0, left out).
_PRIORITY = {"high": 1, "medium": 5, "low": 9}
#: Control characters a TEXT value cannot hold (RFC 5545 §3.3.11 allows HTAB, and a line break
#: as the escape `\n`): removed. A CR LF or lone CR is a line break.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CARRIAGE_RETURN = re.compile(r"\r\n?")


def calendar_bytes(content: CalendarTasks) -> bytes:
    """The calendar of these tasks, as the bytes of a `text/calendar` body."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "Tasks")
    # The views as JSON values, whichever adapter read them (rendered JSON or Python objects).
    views = orjson.loads(json_bytes(list(content.tasks)))
    present = {view["id"] for view in views}
    todos = [_todo(view, content.category_names, present) for view in views]
    # A VTIMEZONE for every TZID used, right from the earliest instant the calendar gives in it.
    earliest: dict[str, datetime] = {}
    for todo in todos:
        due = todo.get("DUE")
        tzid = due.params.get("TZID") if due is not None else None
        if tzid is not None:
            instant = todo.decoded("DUE").astimezone(UTC)
            earliest[tzid] = min(instant, earliest.get(tzid, instant))
    for tzid in sorted(earliest):
        calendar.add_component(vtimezone(tzid, earliest[tzid]))
    for todo in todos:
        calendar.add_component(todo)
    return bytes(calendar.to_ical())


def _todo(view: dict[str, Any], category_names: dict[UUID, str], present: set[str]) -> Todo:
    todo = Todo()
    updated = _instant(view["updated_at"])
    todo.add("uid", view["id"])
    todo.add("dtstamp", updated)
    todo.add("created", _instant(view["created_at"]))
    todo.add("last-modified", updated)
    todo.add("sequence", view["version"])
    todo.add("summary", _text(view["title"]))
    if view["description"]:
        todo.add("description", _text(view["description"]))
    due = _due(view)
    if due is not None:
        todo.add("due", due)
        # A completed task's series goes on in its successor (a task of its own): repeating it
        # here too would show each date twice.
        if view["recurrence"] and not view["completed"]:
            # A repeat rule steps from DTSTART (RFC 5545 §3.8.5.3): the task's due date is its first.
            todo.add("dtstart", due)
            todo.add("rrule", _rule(view["recurrence"], due, view["time_zone"]))
    if view["priority"] in _PRIORITY:
        todo.add("priority", _PRIORITY[view["priority"]])
    categories = list(view["tags"])
    # The categories are read apart from the tasks: one deleted in between is simply not named.
    category = category_names.get(UUID(view["category_id"])) if view["category_id"] is not None else None
    if category is not None:
        categories.append(category)
    for name in categories:
        # One property each: libical splits a value list at every comma, escaped or not.
        todo.add("categories", [_text(name)])
    todo.add("status", "COMPLETED" if view["completed"] else "NEEDS-ACTION")
    if view["completed_at"] is not None:
        todo.add("completed", _instant(view["completed_at"]))
    if view["parent_id"] is not None and view["parent_id"] in present:
        todo.add("related-to", view["parent_id"])
    if view["remind_at"] is not None:
        todo.add_component(_alarm(_text(view["title"]), _instant(view["remind_at"])))
    return todo


def _rule(text: str, due: date | datetime, time_zone: str) -> vRecur:
    """The task's repeat rule, its UNTIL in the type of DTSTART (RFC 5545 §3.3.10), meaning what
    the service reads in it (`todo_core.recurrence`): for an all-day task a day, in the task's
    zone, the last that starts by then; for a timed one an instant, in UTC (a date-only UNTIL:
    the last second of that day in the task's zone)."""
    rule: vRecur = vRecur.from_ical(text)
    if "UNTIL" in rule:
        rule["UNTIL"] = [_until(until, due, time_zone) for until in rule["UNTIL"]]
    return rule


def _until(until: date | datetime, due: date | datetime, time_zone: str) -> date | datetime:
    if not isinstance(due, datetime):
        return until.astimezone(ZoneInfo(time_zone)).date() if isinstance(until, datetime) else until
    if isinstance(until, datetime):
        return until
    return time_zones.start_of_day(until + timedelta(days=1), time_zone) - timedelta(seconds=1)


def _text(value: str) -> str:
    """A TEXT value without the control characters RFC 5545 §3.3.11 does not allow."""
    return _CONTROL.sub("", _CARRIAGE_RETURN.sub("\n", value))


def _due(view: dict[str, Any]) -> date | datetime | None:
    """DUE: a date-time in the task's own time zone (TZID); for an all-day task, a date."""
    if view["due_date"] is not None:
        return date.fromisoformat(view["due_date"])
    if view["due_at"] is None:
        return None
    return _instant(view["due_at"]).astimezone(ZoneInfo(view["time_zone"]))


def _alarm(title: str, at: datetime) -> Alarm:
    """The task's reminder: a display alarm at that instant (TRIGGER;VALUE=DATE-TIME, in UTC)."""
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", title)
    alarm.add("trigger", at, parameters={"VALUE": "DATE-TIME"})
    return alarm


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)
