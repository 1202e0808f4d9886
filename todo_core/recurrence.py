"""Repeating tasks: a subset of RFC 5545 RRULE, stepped by python-dateutil.

Supported parts: FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, BYDAY, BYMONTHDAY, COUNT and
UNTIL. The task's `due_at` is the rule's DTSTART: the first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from dateutil.rrule import rrule, rrulestr

from todo_core.errors import FieldError

FIELD = "recurrence"
MAX_LENGTH = 500
_FREQUENCIES = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_PARTS = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"}
_BYDAY = re.compile(r"^([+-]?(?:[1-9]|[1-4][0-9]|5[0-3]))?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^(\d{8})(T\d{6}Z)?$")
_POSITIVE = re.compile(r"^[1-9][0-9]{0,5}$")


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
    if "UNTIL" in parts and "T" not in parts["UNTIL"]:
        parts["UNTIL"] += "T235959Z"  # a date-only UNTIL includes that whole (UTC) day
    ordered = {"FREQ": parts.pop("FREQ")} | parts
    return Recurrence(ordered)


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
    return None


def check_with_start(rule: Recurrence, due_at: datetime) -> FieldError | None:
    """Check that dateutil accepts the rule from this first occurrence."""
    try:
        _as_rrule(rule, due_at, with_count=True)
    except (ValueError, TypeError, OverflowError) as error:
        return FieldError(FIELD, f"is not a valid rule: {error}")
    return None


def next_occurrence(rule: Recurrence, due_at: datetime) -> tuple[datetime, Recurrence] | None:
    """The occurrence after `due_at`, with the rule that the next task carries; None at the end.

    COUNT counts the occurrences still to come, this one included, so the next task's rule has
    one less; UNTIL stays as it is and ends the series by itself.
    """
    remaining = int(rule.parts["COUNT"]) if "COUNT" in rule.parts else None
    if remaining is not None and remaining <= 1:
        return None
    try:
        following = _as_rrule(rule, due_at, with_count=False).after(due_at)
    except (ValueError, OverflowError):
        return None  # the series runs past the last representable date
    if following is None:
        return None
    parts = dict(rule.parts)
    if remaining is not None:
        parts["COUNT"] = str(remaining - 1)
    return following.astimezone(UTC), Recurrence(parts)


def _as_rrule(rule: Recurrence, due_at: datetime, *, with_count: bool) -> rrule:
    parts = rule.parts if with_count else {k: v for k, v in rule.parts.items() if k != "COUNT"}
    text = ";".join(f"{key}={value}" for key, value in parts.items())
    parsed = rrulestr(text, dtstart=due_at.astimezone(UTC))
    assert isinstance(parsed, rrule)
    return parsed
