"""Read one iCalendar document from stdin with libical 3 (GNOME Evolution's parser, through
libical-glib) and print, as JSON, what it understood: its errors (the `X-LIC-ERROR` properties it
inserts where it cannot parse, and those `check_restrictions` adds for RFC 5545's rules), and per
VTODO the values a calendar app shows. Instants are POSIX seconds; an all-day date is
"YYYY-MM-DD". A TZID is resolved with the file's VTIMEZONE, as libical does.

Run by the system Python (`/usr/bin/python3`, with Debian's `python3-gi` and `gir1.2-ical-3.0`):
the project's virtual environment cannot import `gi`.
"""

from __future__ import annotations

import calendar
import json
import sys

import gi  # type: ignore[import-not-found]

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # type: ignore[import-not-found]  # noqa: E402

OCCURRENCES = 5
Kind = ICalGLib.ComponentKind
Prop = ICalGLib.PropertyKind


def moment(time: ICalGLib.Time) -> int | str:
    if time.is_date():
        return f"{time.get_year():04}-{time.get_month():02}-{time.get_day():02}"
    utc = time.convert_to_zone(ICalGLib.Timezone.get_utc_timezone())
    fields = (utc.get_year(), utc.get_month(), utc.get_day(), utc.get_hour(), utc.get_minute(), utc.get_second())
    return calendar.timegm(fields)


def children(component: ICalGLib.Component, kind: ICalGLib.ComponentKind) -> list[ICalGLib.Component]:
    found = []
    child = component.get_first_component(kind)
    while child is not None:
        found.append(child)
        child = component.get_next_component(kind)
    return found


def properties(component: ICalGLib.Component, kind: ICalGLib.PropertyKind) -> list[ICalGLib.Property]:
    found = []
    prop = component.get_first_property(kind)
    while prop is not None:
        found.append(prop)
        prop = component.get_next_property(kind)
    return found


def errors_in(component: ICalGLib.Component) -> list[str]:
    found = [
        f"{component.kind_to_string(component.isa())}: {prop.get_xlicerror()}"
        for prop in properties(component, Prop.XLICERROR_PROPERTY)
    ]
    for child in children(component, Kind.ANY_COMPONENT):
        found += errors_in(child)
    return found


def todo_of(vtodo: ICalGLib.Component) -> dict[str, object]:
    due = vtodo.get_first_property(Prop.DUE_PROPERTY)
    rule = vtodo.get_first_property(Prop.RRULE_PROPERTY)
    occurrences = None
    if rule is not None:
        start = vtodo.get_dtstart()
        iterator = ICalGLib.RecurIterator.new(rule.get_rrule(), start)
        occurrences = []
        occurrence = iterator.next()
        while occurrence is not None and not occurrence.is_null_time() and len(occurrences) < OCCURRENCES:
            occurrence.set_timezone(start.get_timezone())
            occurrences.append(moment(occurrence))
            occurrence = iterator.next()
    related = vtodo.get_first_property(Prop.RELATEDTO_PROPERTY)
    return {
        "summary": vtodo.get_summary(),
        "description": vtodo.get_description(),
        "categories": [prop.get_categories() for prop in properties(vtodo, Prop.CATEGORIES_PROPERTY)],
        "related_to": related.get_relatedto() if related is not None else None,
        "due": moment(vtodo.get_due()) if due is not None else None,
        "alarms": [
            moment(prop.get_trigger().get_time())
            for alarm in children(vtodo, Kind.VALARM_COMPONENT)
            for prop in properties(alarm, Prop.TRIGGER_PROPERTY)
        ],
        "occurrences": occurrences,
    }


def main() -> None:
    text = sys.stdin.read()
    root = ICalGLib.Component.new_from_string(text)
    if root is None or root.isa() != Kind.VCALENDAR_COMPONENT:
        print(json.dumps({"errors": ["libical found no VCALENDAR"], "todos": {}}))
        return
    errors = errors_in(root)  # what the parser itself could not read
    if not root.check_restrictions():  # adds an X-LIC-ERROR for each rule broken
        errors.append("check_restrictions() failed")
    errors += [error for error in errors_in(root) if error not in errors]
    todos = {vtodo.get_uid(): todo_of(vtodo) for vtodo in children(root, Kind.VTODO_COMPONENT)}
    print(json.dumps({"errors": errors, "todos": todos}))


if __name__ == "__main__":
    main()
