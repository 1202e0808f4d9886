"""Time zones: repeat rules step on the task's local wall clock, and a task's zone defaults to
the user's setting."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.domain.conftest import FixedClock
from tests.domain.rule_strategies import rules
from todo_adapters.memory import InMemoryUnitOfWork
from todo_core import recurrence
from todo_core.commands import run
from todo_core.errors import FieldError, ValidationFailed
from todo_core.recurrence import Recurrence
from todo_core.task import Task, TaskFields
from todo_core.use_cases.settings import get_settings, replace_settings
from todo_core.use_cases.tasks import complete_task, create_task, patch_task, replace_task
from todo_core.user_settings import UserSettings

Uow = Callable[[], InMemoryUnitOfWork]
ALICE = "alice"
BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def next_due(text: str, due_at: datetime, time_zone: str = BERLIN) -> datetime | None:
    rule = recurrence.parse(text)
    assert isinstance(rule, Recurrence), rule
    assert recurrence.check_with_start(rule, due_at, time_zone) is None
    following = recurrence.next_occurrence(rule, due_at, time_zone)
    return following[0] if following else None


def series(text: str, due_at: datetime, steps: int, time_zone: str = BERLIN) -> list[datetime]:
    """The due dates a series goes through as each task is completed in turn."""
    dues = [due_at]
    for _ in range(steps):
        following = next_due(text, dues[-1], time_zone)
        assert following is not None
        dues.append(following)
    return dues


def local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(BERLIN))


# Stepping on the wall clock


def test_a_daily_task_keeps_its_local_time_when_summer_time_begins() -> None:
    # 09:00 in Berlin (UTC+1) the day before the clocks go forward; 09:00 (UTC+2) the day after.
    assert next_due("FREQ=DAILY", utc(2026, 3, 28, 8)) == utc(2026, 3, 29, 7)


def test_a_daily_task_keeps_its_local_time_when_summer_time_ends() -> None:
    assert next_due("FREQ=DAILY", utc(2026, 10, 24, 7)) == utc(2026, 10, 25, 8)


def test_a_daily_0900_task_stays_at_0900_local_all_year() -> None:
    dues = series("FREQ=DAILY", utc(2026, 1, 1, 8), steps=364)
    assert {(local(due).hour, local(due).minute) for due in dues} == {(9, 0)}
    assert local(dues[-1]).date() == datetime(2026, 12, 31).date()


def test_the_same_task_in_utc_steps_by_24_hours_as_before() -> None:
    assert next_due("FREQ=DAILY", utc(2026, 3, 28, 8), "UTC") == utc(2026, 3, 29, 8)


def test_byday_is_read_on_the_local_calendar() -> None:
    # Monday 2 March 00:30 in Berlin is still Sunday in UTC: the next Monday is 9 March, local.
    monday_early = utc(2026, 3, 1, 23, 30)
    assert local(monday_early).weekday() == 0
    assert next_due("FREQ=WEEKLY;BYDAY=MO", monday_early) == utc(2026, 3, 8, 23, 30)
    assert next_due("FREQ=WEEKLY;BYDAY=MO,TH", monday_early) == utc(2026, 3, 4, 23, 30)


def test_bymonthday_is_read_on_the_local_calendar() -> None:
    # 1 April 00:30 in Berlin is 31 March in UTC.
    first_of_april = utc(2026, 3, 31, 22, 30)
    assert next_due("FREQ=MONTHLY;BYMONTHDAY=1", first_of_april) == utc(2026, 4, 30, 22, 30)


def test_a_local_time_the_clocks_skip_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist on 29 March 2026 in Berlin (02:00 becomes 03:00): RFC 5545 reads it
    # with the offset from before the gap, UTC+1, which is 03:30 local.
    following = next_due("FREQ=DAILY", utc(2026, 3, 28, 1, 30))
    assert following == utc(2026, 3, 29, 1, 30)
    assert (local(following).hour, local(following).minute) == (3, 30)


def test_a_local_time_that_happens_twice_is_the_first() -> None:
    # 02:30 happens twice on 25 October 2026 in Berlin: first in summer time (UTC+2).
    following = next_due("FREQ=DAILY", utc(2026, 10, 24, 0, 30))
    assert following == utc(2026, 10, 25, 0, 30)
    # And the day after is 02:30 in winter time again.
    assert next_due("FREQ=DAILY", utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 26, 1, 30)


def test_until_is_an_instant_compared_with_each_occurrences_instant() -> None:
    due = utc(2026, 3, 28, 8)
    assert next_due("FREQ=DAILY;UNTIL=20260329T070000Z", due) == utc(2026, 3, 29, 7)
    assert next_due("FREQ=DAILY;UNTIL=20260329T065959Z", due) is None


@pytest.mark.parametrize("zone", ["Pacific/Chatham", "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu"])
def test_zones_with_odd_offsets_keep_the_local_time_of_day(zone: str) -> None:
    first = datetime(2026, 1, 5, 9, 15, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    dues = series("FREQ=WEEKLY;BYDAY=MO,WE", first, steps=120, time_zone=zone)
    shown = [due.astimezone(ZoneInfo(zone)) for due in dues]
    assert {(moment.hour, moment.minute) for moment in shown} == {(9, 15)}
    assert {moment.weekday() for moment in shown} == {0, 2}


# The zone of a task


def test_an_unknown_zone_is_refused_naming_the_field() -> None:
    for name in ("Mars/Olympus_Mons", "europe/berlin", "", "../etc/passwd", "+02:00"):
        with pytest.raises(ValidationFailed) as refused:
            TaskFields(title="t", time_zone=name).validated()
        assert [error.field for error in refused.value.errors] == ["time_zone"], name


def test_a_task_naming_no_zone_is_in_utc_when_validated_alone() -> None:
    assert TaskFields(title="t").validated().time_zone == "UTC"


def test_the_reminder_keeps_its_distance_from_the_due_time_across_the_change() -> None:
    due = utc(2026, 3, 28, 8)
    fields = TaskFields(
        title="Stand-up", due_at=due, remind_at=due - timedelta(minutes=15), recurrence="FREQ=DAILY", time_zone=BERLIN
    ).validated()
    task = Task.new(ALICE, fields, due)
    following = task.with_fields(dataclasses.replace(fields, completed=True), due).next_occurrence(due)
    assert following is not None
    assert following.fields.due_at == utc(2026, 3, 29, 7)
    assert following.fields.remind_at == utc(2026, 3, 29, 6, 45)
    assert following.fields.time_zone == BERLIN


# The user's setting


async def test_a_user_who_saved_no_settings_is_in_utc(uow: Uow) -> None:
    assert await get_settings(uow(), ALICE) == UserSettings(time_zone="UTC")


async def test_a_new_task_takes_the_users_zone_unless_it_names_one(uow: Uow, clock: FixedClock) -> None:
    await run(uow(), replace_settings, ALICE, UserSettings(time_zone=BERLIN))
    assert (await run(uow(), create_task, clock, ALICE, TaskFields(title="t"))).fields.time_zone == BERLIN
    tokyo = await run(uow(), create_task, clock, ALICE, TaskFields(title="t", time_zone="Asia/Tokyo"))
    assert tokyo.fields.time_zone == "Asia/Tokyo"
    assert (await run(uow(), create_task, clock, "bob", TaskFields(title="t"))).fields.time_zone == "UTC"


async def test_a_task_keeps_its_zone_when_the_setting_changes(uow: Uow, clock: FixedClock) -> None:
    task = await run(uow(), create_task, clock, ALICE, TaskFields(title="t"))
    await run(uow(), replace_settings, ALICE, UserSettings(time_zone=BERLIN))
    patched = await run(uow(), patch_task, clock, ALICE, task.id, {"title": "renamed"})
    assert patched.fields.time_zone == "UTC"


async def test_a_null_zone_in_a_patch_or_an_absent_one_in_a_replace_is_the_users_setting(
    uow: Uow, clock: FixedClock
) -> None:
    task = await run(uow(), create_task, clock, ALICE, TaskFields(title="t", time_zone="Asia/Tokyo"))
    await run(uow(), replace_settings, ALICE, UserSettings(time_zone=BERLIN))
    assert (await run(uow(), patch_task, clock, ALICE, task.id, {"time_zone": None})).fields.time_zone == BERLIN
    await run(uow(), patch_task, clock, ALICE, task.id, {"time_zone": "Asia/Tokyo"})
    assert (await run(uow(), replace_task, clock, ALICE, task.id, TaskFields(title="t"))).fields.time_zone == BERLIN


async def test_an_unknown_zone_setting_is_refused_and_nothing_is_saved(uow: Uow) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await run(uow(), replace_settings, ALICE, UserSettings(time_zone="Europe/Atlantis"))
    assert [error.field for error in refused.value.errors] == ["time_zone"]
    assert (await get_settings(uow(), ALICE)).time_zone == "UTC"


async def test_completing_a_daily_berlin_task_across_the_change_keeps_0900_local(uow: Uow, clock: FixedClock) -> None:
    await run(uow(), replace_settings, ALICE, UserSettings(time_zone=BERLIN))
    fields = TaskFields(title="Stretch", due_at=utc(2026, 3, 28, 8), recurrence="FREQ=DAILY")
    task = await run(uow(), create_task, clock, ALICE, fields)
    done = await run(uow(), complete_task, clock, ALICE, task.id, True)
    assert done.next_occurrence_id is not None
    async with uow() as reading:
        following = await reading.tasks.get(ALICE, done.next_occurrence_id)
    assert following is not None
    assert (following.fields.due_at, following.fields.time_zone) == (utc(2026, 3, 29, 7), BERLIN)


# Any rule, any zone: the guard agrees with dateutil, and the wall clock time is kept


@given(
    text=rules(),
    due_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)),
    zone_name=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]),
)
@settings(max_examples=300, deadline=None)
def test_every_accepted_rule_steps_on_the_local_wall_clock(text: str, due_at: datetime, zone_name: str) -> None:
    parsed = recurrence.parse(text)
    if isinstance(parsed, FieldError) or recurrence.check_with_start(parsed, due_at, zone_name) is not None:
        return
    following = recurrence.next_occurrence(parsed, due_at, zone_name)
    assert following is not None, (text, due_at, zone_name)
    zone = ZoneInfo(zone_name)
    wall = due_at.astimezone(zone).replace(tzinfo=None)
    expected_wall = rrulestr(parsed.text, dtstart=wall).after(wall)
    assert expected_wall is not None
    assert following[0] > due_at
    # Shown on the wall clock, the occurrence is dateutil's; one the clocks skip moves forward
    # by the gap (PEP 495: fold=0 has the offset from before it, fold=1 the one after).
    before, after = (expected_wall.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1))
    assert before is not None and after is not None
    gap = max(after - before, timedelta(0))
    shown = following[0].astimezone(zone).replace(tzinfo=None)
    assert shown == expected_wall.replace(microsecond=due_at.microsecond) + gap
