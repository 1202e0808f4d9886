"""Repeating tasks: a subset of RFC 5545 RRULE, stepped by python-dateutil.

Supported parts: FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, BYDAY, BYMONTHDAY, COUNT and
UNTIL. The task's `due_at` (or, for an all-day task, its `due_date`) is the rule's DTSTART: the
first occurrence. An all-day task's rule steps dates: each occurrence is a day.

A rule is stepped in the task's time zone, on the wall clock (RFC 5545's DTSTART with a TZID):
dateutil steps the local date and time, and each occurrence is then read as the instant it is
in that zone, so a daily 09:00 stays at 09:00 when the clocks change, and BYDAY and BYMONTHDAY
name days of the local calendar. UNTIL is an instant (UTC), compared with each occurrence's
(an all-day occurrence's is the start of its day in the zone); a date-only UNTIL ends the
series with that day in the task's zone, as RFC 5545 reads it beside a local DTSTART.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta

from dateutil.rrule import rrule, rrulestr

from todo_core import time_zones
from todo_core.errors import FieldError

FIELD = "recurrence"
MAX_LENGTH = 500
_FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_PARTS = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"}
_BYDAY = re.compile(r"^([+-]?(?:[1-9]|[1-4][0-9]|5[0-3]))?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^(\d{8})(T\d{6}Z)?$")
_POSITIVE = re.compile(r"^[1-9][0-9]{0,5}$")
INTERVAL_MAX = 1000
# How many periods a rule may go without an occurrence: any rule people use repeats well
# within them (Friday the 13th, the 29th of February), and checking them takes milliseconds.
GUARD_PERIODS = 1000
_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated rule, kept as its normalised RRULE text."""

    parts: dict[str, str]

    @property
    def text(self) -> str:
        return ";".join(f"{key}={value}" for key, value in self.parts.items())


def parse(text: str) -> Recurrence | FieldError:
    """Normalise and check an RRULE; return it, or the error that says what is wrong."""
    body = text.strip().upper().removeprefix("RRULE:")
    if not body:
        return FieldError(FIELD, "must not be blank; send null for a task that does not repeat")
    if len(body) > MAX_LENGTH:
        return FieldError(FIELD, f"must be at most {MAX_LENGTH} characters")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        key, equals, value = item.partition("=")
        if not equals or not value:
            return FieldError(FIELD, f"'{item}' is not a NAME=VALUE part")
        if key not in _PARTS:
            return FieldError(FIELD, f"{key} is not supported (supported: {', '.join(sorted(_PARTS))})")
        if key in parts:
            return FieldError(FIELD, f"{key} is given twice")
        parts[key] = value
    problem = _check_parts(parts)
    if problem:
        return FieldError(FIELD, problem)
    return Recurrence({"FREQ": parts.pop("FREQ")} | parts)


def _check_parts(parts: dict[str, str]) -> str | None:
    if "FREQ" not in parts:
        return "FREQ is required"
    if parts["FREQ"] not in _FREQUENCIES:
        return f"FREQ must be one of {', '.join(sorted(_FREQUENCIES))}"
    for key in ("INTERVAL", "COUNT"):
        if key in parts and not _POSITIVE.match(parts[key]):
            return f"{key} must be a positive whole number"
    if "COUNT" in parts and "UNTIL" in parts:
        return "COUNT and UNTIL cannot both be given"
    if "UNTIL" in parts and not _UNTIL.match(parts["UNTIL"]):
        return "UNTIL must be a UTC date-time like 20261231T235959Z, or a date like 20261231"
    if "BYDAY" in parts and not all(_BYDAY.match(day) for day in parts["BYDAY"].split(",")):
        return "BYDAY must be a list of MO, TU, WE, TH, FR, SA, SU, each optionally numbered (1MO, -1FR)"
    if "BYMONTHDAY" in parts:
        days = parts["BYMONTHDAY"].split(",")
        if not all(re.fullmatch(r"[+-]?\d{1,2}", day) and 1 <= abs(int(day)) <= 31 for day in days):
            return "BYMONTHDAY must be a list of days from 1 to 31 or -31 to -1"
    if int(parts.get("INTERVAL", "1")) > INTERVAL_MAX:
        return f"INTERVAL must be at most {INTERVAL_MAX}"
    # By value, not spelling: 1, +1 and 01 are one day of the month, 1MO and +01MO one Monday.
    by_day = _by_day(parts)
    if len(set(by_day)) != len(by_day):
        return "BYDAY lists a day twice"
    monthdays = [int(day) for day in parts.get("BYMONTHDAY", "").split(",") if day]
    if len(set(monthdays)) != len(monthdays):
        return "BYMONTHDAY lists a day twice"
    kinds = {number != 0 for number, _ in by_day}
    if len(kinds) > 1:
        return "BYDAY cannot mix numbered days (1MO, -1FR) with plain ones (TU)"
    numbered = True in kinds
    if numbered and parts["FREQ"] in ("DAILY", "WEEKLY"):
        return "a numbered BYDAY (1MO, -1FR) needs FREQ=MONTHLY or FREQ=YEARLY"
    if numbered and "BYMONTHDAY" in parts:
        return "a numbered BYDAY (1MO, -1FR) cannot be combined with BYMONTHDAY"
    if parts["FREQ"] == "WEEKLY" and "BYMONTHDAY" in parts:
        return "BYMONTHDAY cannot be used with FREQ=WEEKLY"
    return None


def _by_day(parts: dict[str, str]) -> list[tuple[int, int]]:
    """BYDAY as (number, weekday) pairs: 0 for a plain day, Monday = 0. Parts already checked."""
    pairs = []
    for day in parts.get("BYDAY", "").split(","):
        found = _BYDAY.match(day)
        if found:
            pairs.append((int(found[1] or 0), _WEEKDAYS.index(found[2])))
    return pairs


#: When a task is due: an instant (aware, UTC), or a day (a `date` that is no `datetime`).
Due = datetime | date


def check_with_start(rule: Recurrence, due: Due, time_zone: str = time_zones.DEFAULT) -> FieldError | None:
    """Check that dateutil accepts the rule from this first occurrence (in a zone
    `time_zones.zone_error` accepted), and that the rule (COUNT and UNTIL aside) repeats at all
    within `GUARD_PERIODS` of its periods."""
    try:
        wall = _wall(due, time_zone)
        _as_rrule(rule, wall, with_count=True)
        _until(rule, time_zone)
    except (ValueError, TypeError, OverflowError) as error:
        return FieldError(FIELD, f"is not a valid rule: {error}")
    if not _repeats_soon(rule, wall):
        return FieldError(
            FIELD,
            f"never repeats within {GUARD_PERIODS} periods of the due date (e.g. the 31st of a month with 30 days)",
        )
    return None


def next_occurrence(rule: Recurrence, due: Due, time_zone: str = time_zones.DEFAULT) -> tuple[Due, Recurrence] | None:
    """The occurrence after `due` (an instant, in UTC, or a day), stepped on the wall clock of
    `time_zone`, with the rule that the next task carries; None at the end.

    COUNT counts the occurrences still to come, this one included, so the next task's rule has
    one less; UNTIL stays as it is and ends the series by itself.
    """
    remaining = int(rule.parts["COUNT"]) if "COUNT" in rule.parts else None
    if remaining is not None and remaining <= 1:
        return None
    try:
        wall = _wall(due, time_zone)
        if not _repeats_soon(rule, wall):
            return None  # dateutil would look for one until the year 9999
        following = _as_rrule(rule, wall, with_count=False).after(wall)
        if following is None:
            return None
        # dateutil steps whole seconds; keep the due time's fraction of a second.
        following = following.replace(microsecond=wall.microsecond)
        instant = time_zones.instant_of_wall_time(following, time_zone)
        until = _until(rule, time_zone)
    except (ValueError, OverflowError):
        return None  # the series runs past the last representable date
    if until is not None and instant > until:
        return None
    parts = dict(rule.parts)
    if remaining is not None:
        parts["COUNT"] = str(remaining - 1)
    return (instant if isinstance(due, datetime) else following.date()), Recurrence(parts)


def _wall(due: Due, time_zone: str) -> datetime:
    """Where the rule starts on the zone's wall clock: an instant's local reading, or a day's
    midnight."""
    if isinstance(due, datetime):
        return time_zones.local_wall_time(due, time_zone)
    return datetime.combine(due, time())


def _repeats_soon(rule: Recurrence, wall: datetime) -> bool:
    """Whether some period among the next `GUARD_PERIODS` holds a day the rule picks.

    dateutil walks period after period until it finds an occurrence, through the year 9999 for
    a rule that has none (`FREQ=DAILY;INTERVAL=7;BYDAY=TU` from a Monday): seconds of CPU.
    Asking this cheap calendar question first bounds that walk.
    """
    freq, interval = rule.parts["FREQ"], int(rule.parts.get("INTERVAL", "1"))
    by_day = _by_day(rule.parts)
    weekdays = {weekday for number, weekday in by_day if not number}
    numbered = [(number, weekday) for number, weekday in by_day if number]
    monthdays = [int(day) for day in rule.parts.get("BYMONTHDAY", "").split(",") if day]
    start = wall.date()
    if freq == "WEEKLY" or (weekdays and not monthdays and not numbered and freq != "DAILY"):
        return True  # every week holds every weekday
    for period in range(1, GUARD_PERIODS + 1):
        step = period * interval
        try:
            if freq == "DAILY":
                day = start + timedelta(days=step)
                picked = _days_in(day.year, day.month, monthdays, weekdays) if monthdays else None
                if (not weekdays or day.weekday() in weekdays) and (picked is None or day.day in picked):
                    return True
                continue
            if freq == "MONTHLY":
                month_index = start.year * 12 + start.month - 1 + step
                months = [(month_index // 12, month_index % 12 + 1)]
            else:
                year = start.year + step
                if numbered and any(_weekday_count(year, weekday) >= abs(n) for n, weekday in numbered):
                    return True
                months = [(year, month) for month in range(1, 13)] if monthdays else [(year, start.month)]
            if _datetime_max_year_passed(months):
                return False
            wanted = monthdays or ([] if numbered else [start.day])
            if freq == "MONTHLY" and numbered:
                year, month = months[0]
                if any(_nth_weekday_exists(year, month, n, weekday) for n, weekday in numbered):
                    return True
            if any(_days_in(year, month, wanted, weekdays) for year, month in months):
                return True
        except (OverflowError, ValueError):
            return False
    return False


def _days_in(year: int, month: int, monthdays: list[int], weekdays: set[int]) -> set[int]:
    """The days of that month among `monthdays` (negative: from the end) on one of `weekdays`."""
    length = calendar.monthrange(year, month)[1]
    resolved = {day if day > 0 else length + day + 1 for day in monthdays}
    return {
        day
        for day in resolved
        if 1 <= day <= length and (not weekdays or calendar.weekday(year, month, day) in weekdays)
    }


def _nth_weekday_exists(year: int, month: int, n: int, weekday: int) -> bool:
    first, length = calendar.monthrange(year, month)
    count = 4 + (1 if (weekday - first) % 7 < length - 28 else 0)
    return abs(n) <= count


def _weekday_count(year: int, weekday: int) -> int:
    days = 366 if calendar.isleap(year) else 365
    first = calendar.weekday(year, 1, 1)
    return 52 + (1 if (weekday - first) % 7 < days - 364 else 0)


def _datetime_max_year_passed(months: list[tuple[int, int]]) -> bool:
    return any(year > MAXYEAR for year, _ in months)


def _as_rrule(rule: Recurrence, wall: datetime, *, with_count: bool) -> rrule:
    """The rule as dateutil steps it, from a local wall time (naive). Without UNTIL: it is an
    instant, and dateutil compares a naive start only with a naive UNTIL (see `_until`)."""
    left_out = {"UNTIL"} if with_count else {"UNTIL", "COUNT"}
    stepped = Recurrence({key: value for key, value in rule.parts.items() if key not in left_out})
    parsed = rrulestr(stepped.text, dtstart=wall)
    assert isinstance(parsed, rrule)
    return parsed


def _until(rule: Recurrence, time_zone: str) -> datetime | None:
    """The rule's UNTIL, as the last instant it lets an occurrence have (parts already checked):
    the instant it names, or, for a date, the end of that day in the zone.

    :raises ValueError: it is no date (20261340T000000Z).
    :raises OverflowError: the day after it is past the last representable date.
    """
    if "UNTIL" not in rule.parts:
        return None
    until = rule.parts["UNTIL"]
    if "T" in until:
        return datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    following = datetime.strptime(until, "%Y%m%d").date() + timedelta(days=1)
    return time_zones.start_of_day(following, time_zone) - timedelta(microseconds=1)
