"""A user's tasks as an RFC 5545 calendar, one VTODO per task, built with `icalendar`.

Made from the task views the list returns (`todo_core.views`), so a field of the task is
here as soon as it is in the view. Everything written is a function of the tasks alone
(DTSTAMP is the task's last change, as RFC 5545 §3.8.7.2 allows without METHOD): the same
tasks make the same bytes (`todo_api.calendars` makes the ETag).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from icalendar import Alarm, Calendar, Todo, vRecur

from todo_api.representation import json_bytes
from todo_core.use_cases.calendar import CalendarTasks

MEDIA_TYPE = "text/calendar; charset=utf-8"
PRODUCT_ID = "-//todo//tasks//EN"
#: RFC 5545 PRIORITY: 1 highest, 9 lowest; a task without a priority has none (0, left out).
_PRIORITY = {"high": 1, "medium": 5, "low": 9}


def calendar_bytes(content: CalendarTasks) -> bytes:
    """The calendar of these tasks, as the bytes of a `text/calendar` body."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "Tasks")
    # The views as JSON values, whichever adapter read them (rendered JSON or Python objects).
    for view in orjson.loads(json_bytes(list(content.tasks))):
        calendar.add_component(_todo(view, content.category_names))
    calendar.add_missing_timezones()  # a VTIMEZONE for every TZID used
    _sort_timezones(calendar)
    return bytes(calendar.to_ical())


def _sort_timezones(calendar: Calendar) -> None:
    """VTIMEZONEs first, by TZID: `add_missing_timezones` adds them in the order of a set of
    names, which changes with each process's hash seed, and the same tasks must make the same
    bytes in every worker and after every restart."""
    components = calendar.subcomponents
    zones = sorted((c for c in components if c.name == "VTIMEZONE"), key=lambda zone: str(zone["TZID"]))
    components[:] = [*zones, *(c for c in components if c.name != "VTIMEZONE")]


def _todo(view: dict[str, Any], category_names: dict[UUID, str]) -> Todo:
    todo = Todo()
    updated = _instant(view["updated_at"])
    todo.add("uid", view["id"])
    todo.add("dtstamp", updated)
    todo.add("created", _instant(view["created_at"]))
    todo.add("last-modified", updated)
    todo.add("sequence", view["version"])
    todo.add("summary", view["title"])
    if view["description"]:
        todo.add("description", view["description"])
    due = _due(view)
    if due is not None:
        todo.add("due", due)
        if view["recurrence"]:
            # A repeat rule steps from DTSTART (RFC 5545 §3.8.5.3): the task's due date is its first.
            todo.add("dtstart", due)
            rule = vRecur.from_ical(view["recurrence"])
            if not isinstance(due, datetime) and "UNTIL" in rule:
                # UNTIL takes DTSTART's value type: a date, for an all-day task.
                rule["UNTIL"] = [until.date() for until in rule["UNTIL"]]
            todo.add("rrule", rule)
    if view["priority"] in _PRIORITY:
        todo.add("priority", _PRIORITY[view["priority"]])
    categories = list(view["tags"])
    # The categories are read apart from the tasks: one deleted in between is simply not named.
    category = category_names.get(UUID(view["category_id"])) if view["category_id"] is not None else None
    if category is not None:
        categories.append(category)
    if categories:
        todo.add("categories", categories)
    todo.add("status", "COMPLETED" if view["completed"] else "NEEDS-ACTION")
    if view["completed_at"] is not None:
        todo.add("completed", _instant(view["completed_at"]))
    if view["parent_id"] is not None:
        todo.add("related-to", view["parent_id"])
    if view["remind_at"] is not None:
        todo.add_component(_alarm(view["title"], _instant(view["remind_at"])))
    return todo


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
    alarm.add("trigger", at)
    return alarm


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)
