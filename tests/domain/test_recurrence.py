"""Repeating tasks: the RRULE subset we accept, and how a series steps from one due date to the next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.rule_strategies import rules
from todo_core import recurrence
from todo_core.errors import FieldError
from todo_core.recurrence import Recurrence


def rule(text: str) -> Recurrence:
    parsed = recurrence.parse(text)
    assert isinstance(parsed, Recurrence), parsed
    return parsed


def problem(text: str) -> str:
    parsed = recurrence.parse(text)
    assert isinstance(parsed, FieldError), f"{text!r} was accepted as {parsed}"
    assert parsed.field == "recurrence"
    return parsed.message


def series(text: str, first_due: datetime, limit: int = 10) -> list[datetime]:
    """The due dates a series goes through when each task is completed in turn, first one included.

    Stops at the end of the series or after `limit` steps, whichever comes first.
    """
    current, due = rule(text), first_due
    dues = [due]
    for _ in range(limit - 1):
        following = recurrence.next_occurrence(current, due)
        if following is None:
            break
        due, current = following
        dues.append(due)
    return dues


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


# Parsing: what is accepted and how it is normalised


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("  freq=monthly;bymonthday=-1 ", "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ("INTERVAL=2;FREQ=YEARLY", "FREQ=YEARLY;INTERVAL=2"),
        ("FREQ=DAILY;COUNT=5", "FREQ=DAILY;COUNT=5"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("FREQ=DAILY;UNTIL=20261231T120000Z", "FREQ=DAILY;UNTIL=20261231T120000Z"),
    ],
)
def test_supported_rules_are_accepted_and_normalised(text: str, normalised: str) -> None:
    assert rule(text).text == normalised


def test_date_only_until_is_kept_as_a_date() -> None:
    assert rule("FREQ=DAILY;UNTIL=20261231").text == "FREQ=DAILY;UNTIL=20261231"


@pytest.mark.parametrize("part", ["BYSETPOS=1", "BYHOUR=9", "WKST=SU", "DTSTART=20260101"])
def test_unsupported_part_is_named_in_the_error(part: str) -> None:
    name = part.split("=")[0]
    message = problem(f"FREQ=DAILY;{part}")
    assert name in message
    assert "not supported" in message


def test_missing_freq_is_refused() -> None:
    assert problem("INTERVAL=2;BYDAY=MO") == "FREQ is required"


@pytest.mark.parametrize("frequency", ["HOURLY", "MINUTELY", "SECONDLY", "FORTNIGHTLY"])
def test_unsupported_frequency_is_refused(frequency: str) -> None:
    assert "FREQ must be one of" in problem(f"FREQ={frequency}")


@pytest.mark.parametrize("interval", ["0", "-1", "two", "1.5", ""])
def test_bad_interval_is_refused(interval: str) -> None:
    message = problem(f"FREQ=DAILY;INTERVAL={interval}")
    assert "INTERVAL" in message


@pytest.mark.parametrize("count", ["0", "-3", "many"])
def test_bad_count_is_refused(count: str) -> None:
    assert "COUNT must be a positive whole number" in problem(f"FREQ=DAILY;COUNT={count}")


def test_count_and_until_together_are_refused() -> None:
    assert problem("FREQ=DAILY;COUNT=3;UNTIL=20261231") == "COUNT and UNTIL cannot both be given"


@pytest.mark.parametrize("until", ["2026-12-31", "20261231T120000", "tomorrow"])
def test_malformed_until_is_refused(until: str) -> None:
    assert "UNTIL must be" in problem(f"FREQ=DAILY;UNTIL={until}")


@pytest.mark.parametrize("days", ["XX", "MO,FUN", "60MO"])
def test_bad_byday_is_refused(days: str) -> None:
    assert "BYDAY" in problem(f"FREQ=WEEKLY;BYDAY={days}")


@pytest.mark.parametrize("days", ["0", "32", "-32", "first"])
def test_bad_bymonthday_is_refused(days: str) -> None:
    assert "BYMONTHDAY" in problem(f"FREQ=MONTHLY;BYMONTHDAY={days}")


def test_a_part_given_twice_is_refused() -> None:
    assert problem("FREQ=DAILY;FREQ=WEEKLY") == "FREQ is given twice"


def test_a_part_without_a_value_is_refused() -> None:
    assert "NAME=VALUE" in problem("FREQ=DAILY;COUNT")


@pytest.mark.parametrize("blank", ["", "   ", "RRULE:"])
def test_blank_rule_is_refused_pointing_at_null(blank: str) -> None:
    assert "send null" in problem(blank)


def test_overlong_rule_is_refused() -> None:
    assert "at most 500" in problem("FREQ=WEEKLY;BYDAY=" + ",".join(["MO"] * 200))


# Stepping through a series


def test_daily_steps_one_day() -> None:
    assert series("FREQ=DAILY", at(2026, 12, 30), limit=3) == [at(2026, 12, 30), at(2026, 12, 31), at(2027, 1, 1)]


def test_interval_spaces_occurrences() -> None:
    assert series("FREQ=DAILY;INTERVAL=3", at(2026, 3, 1), limit=3) == [at(2026, 3, 1), at(2026, 3, 4), at(2026, 3, 7)]


def test_monthly_task_on_the_31st_skips_short_months() -> None:
    # RFC 5545: a monthly rule on a day a month lacks has no occurrence in that month.
    assert series("FREQ=MONTHLY", at(2026, 1, 31), limit=4) == [
        at(2026, 1, 31),
        at(2026, 3, 31),
        at(2026, 5, 31),
        at(2026, 7, 31),
    ]


def test_last_day_of_the_month_rule_lands_on_every_month_end() -> None:
    assert series("FREQ=MONTHLY;BYMONTHDAY=-1", at(2026, 1, 31), limit=5) == [
        at(2026, 1, 31),
        at(2026, 2, 28),
        at(2026, 3, 31),
        at(2026, 4, 30),
        at(2026, 5, 31),
    ]


def test_last_day_of_february_in_a_leap_year_is_the_29th() -> None:
    assert series("FREQ=MONTHLY;BYMONTHDAY=-1", at(2028, 1, 31), limit=2)[1] == at(2028, 2, 29)


def test_yearly_task_on_a_leap_day_next_falls_on_the_leap_day_four_years_on() -> None:
    assert series("FREQ=YEARLY", at(2028, 2, 29), limit=3) == [at(2028, 2, 29), at(2032, 2, 29), at(2036, 2, 29)]


def test_weekly_byday_visits_each_listed_day_in_order() -> None:
    monday = at(2026, 3, 2)
    assert series("FREQ=WEEKLY;BYDAY=MO,WE,FR", monday, limit=5) == [
        monday,
        at(2026, 3, 4),
        at(2026, 3, 6),
        at(2026, 3, 9),
        at(2026, 3, 11),
    ]


def test_weekly_byday_with_interval_skips_the_weeks_in_between() -> None:
    monday = at(2026, 3, 2)
    assert series("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", monday, limit=4) == [
        monday,
        at(2026, 3, 4),
        at(2026, 3, 16),
        at(2026, 3, 18),
    ]


def test_weekly_without_byday_repeats_on_the_due_weekday() -> None:
    thursday = at(2026, 3, 5)
    assert series("FREQ=WEEKLY", thursday, limit=3) == [thursday, at(2026, 3, 12), at(2026, 3, 19)]


def test_the_time_of_day_is_kept_from_one_occurrence_to_the_next() -> None:
    due = datetime(2026, 3, 2, 17, 45, 30, tzinfo=UTC)
    assert series("FREQ=DAILY", due, limit=2)[1] == due + timedelta(days=1)


def test_next_due_date_is_in_utc_even_when_the_first_was_given_with_an_offset() -> None:
    tokyo = datetime(2026, 3, 2, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    following = recurrence.next_occurrence(rule("FREQ=DAILY"), tokyo)
    assert following is not None
    assert following[0] == at(2026, 3, 3, hour=9)
    assert following[0].tzinfo == UTC


def test_count_is_decremented_on_each_following_task() -> None:
    following = recurrence.next_occurrence(rule("FREQ=DAILY;COUNT=3"), at(2026, 3, 2))
    assert following is not None
    assert following[1].text == "FREQ=DAILY;COUNT=2"


def test_count_bounds_the_series_to_that_many_occurrences() -> None:
    assert series("FREQ=WEEKLY;COUNT=3", at(2026, 3, 2)) == [at(2026, 3, 2), at(2026, 3, 9), at(2026, 3, 16)]


def test_count_of_one_has_no_next_occurrence() -> None:
    assert recurrence.next_occurrence(rule("FREQ=DAILY;COUNT=1"), at(2026, 3, 2)) is None


def test_no_occurrence_falls_after_until() -> None:
    until = "20260305T080000Z"
    dues = series(f"FREQ=DAILY;UNTIL={until}", at(2026, 3, 2))
    assert dues == [at(2026, 3, 2), at(2026, 3, 3), at(2026, 3, 4)]


def test_an_occurrence_exactly_at_until_is_included() -> None:
    assert series("FREQ=DAILY;UNTIL=20260303T090000Z", at(2026, 3, 2)) == [at(2026, 3, 2), at(2026, 3, 3)]


def test_date_only_until_includes_that_whole_day() -> None:
    late = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    assert series("FREQ=DAILY;UNTIL=20260305", late) == [late, late + timedelta(days=1)]


def test_date_only_until_ends_with_that_day_in_the_tasks_zone() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter; Tokyo's day of the 31st ends at 15:00 UTC.
    berlin = [
        due for due, _ in iterate("FREQ=DAILY;UNTIL=20261231", datetime(2026, 12, 29, 8, tzinfo=UTC), "Europe/Berlin")
    ]
    assert berlin == [datetime(2026, 12, day, 8, tzinfo=UTC) for day in (30, 31)]
    late_in_tokyo = datetime(2026, 12, 30, 14, 30, tzinfo=UTC)  # 23:30 on the 30th in Tokyo
    assert [due for due, _ in iterate("FREQ=DAILY;UNTIL=20261231", late_in_tokyo, "Asia/Tokyo")] == [
        late_in_tokyo + timedelta(days=1)
    ]
    # An all-day series in Berlin ends on the 31st, not on the 1st (whose Berlin midnight is
    # still the 31st in UTC).
    days = [due for due, _ in iterate("FREQ=DAILY;UNTIL=20261231", date(2026, 12, 29), "Europe/Berlin")]
    assert days == [date(2026, 12, 30), date(2026, 12, 31)]


def iterate(text: str, due: datetime | date, zone: str) -> list[tuple[datetime | date, Recurrence]]:
    """The occurrences after `due` that `next_occurrence` steps to, in `zone`."""
    found: list[tuple[datetime | date, Recurrence]] = []
    current: Recurrence = rule(text)
    while (following := recurrence.next_occurrence(current, due, zone)) is not None and len(found) < 10:
        due, current = following
        found.append(following)
    return found


def test_until_stays_on_the_following_tasks() -> None:
    following = recurrence.next_occurrence(rule("FREQ=DAILY;UNTIL=20261231"), at(2026, 3, 2))
    assert following is not None
    assert following[1].text == "FREQ=DAILY;UNTIL=20261231"


def test_a_series_that_never_ends_keeps_going() -> None:
    assert len(series("FREQ=YEARLY", at(2026, 3, 2), limit=50)) == 50


# --- The guard against rules that never repeat, checked against dateutil itself -------------


@given(
    text=rules(),
    due_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)),
)
@settings(max_examples=400, deadline=None)
def test_every_rule_the_guard_accepts_is_stepped_by_dateutil(text: str, due_at: datetime) -> None:
    parsed = recurrence.parse(text)
    if isinstance(parsed, FieldError) or recurrence.check_with_start(parsed, due_at) is not None:
        return  # refused: nothing is ever stepped
    # Accepted and unbounded (no COUNT, no UNTIL): dateutil must find a next occurrence. Were
    # the guard wrong, dateutil would walk to the year 9999 and find none.
    following = recurrence.next_occurrence(parsed, due_at)
    assert following is not None, (text, due_at)
    assert following[0] > due_at
    independent = rrulestr(parsed.text, dtstart=due_at).after(due_at)
    assert independent is not None
    assert following[0] == independent.replace(microsecond=due_at.microsecond)


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
        "FREQ=MONTHLY;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=YEARLY;BYDAY=1MO",
        "FREQ=YEARLY;BYMONTHDAY=1",
        "FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR",
    ],
)
def test_rules_people_use_are_accepted_from_any_day(text: str) -> None:
    parsed = rule(text)
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    for offset in range(0, 3 * 366, 5):
        assert recurrence.check_with_start(parsed, start + timedelta(days=offset)) is None
