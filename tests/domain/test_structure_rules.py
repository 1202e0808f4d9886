"""The rules of subtasks, manual order and all-day dates, on the domain alone."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from todo_core import ordering, recurrence, subtasks
from todo_core.errors import ValidationFailed
from todo_core.ids import new_id
from todo_core.task import Task, TaskFields

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def task(title: str, parent: Task | None = None, **fields: object) -> Task:
    written = TaskFields(title, parent_id=parent.id if parent else None, **fields).validated()  # type: ignore[arg-type]
    return Task.new("ann", written, NOW)


def test_height_counts_the_levels_below_a_task() -> None:
    top = task("Top")
    middle = task("Middle", top)
    bottom = task("Bottom", middle)
    assert subtasks.height(top.id, []) == 0
    assert subtasks.height(top.id, [middle]) == 1
    assert subtasks.height(top.id, [middle, bottom, task("Sibling", top)]) == 2


@pytest.mark.parametrize(("ancestors", "below", "allowed"), [(3, 0, True), (4, 0, False), (2, 1, True), (2, 2, False)])
def test_a_task_and_its_steps_have_at_most_four_ancestors(ancestors: int, below: int, allowed: bool) -> None:
    chain = [new_id() for _ in range(ancestors)]
    check = lambda: subtasks.check_parent(new_id(), new_id(), chain, levels_below=below)  # noqa: E731
    if allowed:
        check()
    else:
        with pytest.raises(ValidationFailed, match="at most 4 ancestors"):
            check()


def test_a_task_is_never_its_own_ancestor() -> None:
    me, parent, grandparent = new_id(), new_id(), new_id()
    with pytest.raises(ValidationFailed, match="itself"):
        subtasks.check_parent(me, me, [])
    with pytest.raises(ValidationFailed, match="one of its steps"):
        subtasks.check_parent(me, parent, [grandparent, me])
    subtasks.check_parent(None, parent, [grandparent])  # a task not made yet has no steps


def test_keys_sort_between_their_neighbours_and_refuse_what_cannot_be() -> None:
    first = ordering.FIRST
    second = ordering.after(first)
    middle = ordering.between(first, second)
    assert middle is not None and first < middle < second
    assert ordering.between(second, first) is None  # out of order
    assert ordering.between(first, first) is None  # no key between equal keys
    keys = ordering.spread(100)
    assert list(keys) == sorted(keys) and len(set(keys)) == 100
    assert max(len(key) for key in keys) <= 3


def test_a_key_that_would_grow_too_long_asks_for_a_rebalance() -> None:
    low, high = ordering.FIRST, ordering.after(ordering.FIRST)
    for _ in range(1000):
        key = ordering.between(low, high)
        if key is None:
            break
        high = key
    else:
        raise AssertionError("keys kept growing")
    assert len(high) <= ordering.POSITION_MAX


def test_an_all_day_repeat_steps_dates_on_the_local_calendar() -> None:
    rule = recurrence.parse("FREQ=MONTHLY;BYMONTHDAY=-1")
    assert not isinstance(rule, type(None))
    following = recurrence.next_occurrence(rule, date(2026, 1, 31), "Europe/Berlin")  # type: ignore[arg-type]
    assert following is not None and following[0] == date(2026, 2, 28)
    weekly = task("Review", due_date=date(2026, 3, 27), recurrence="FREQ=WEEKLY;BYDAY=FR", time_zone="Europe/Berlin")
    done = weekly.with_fields(dataclasses.replace(weekly.fields, completed=True), NOW)
    following_task = done.next_occurrence(NOW)
    assert following_task is not None
    assert (following_task.fields.due_date, following_task.fields.due_at) == (date(2026, 4, 3), None)


def test_an_all_day_reminder_keeps_its_distance_from_the_start_of_the_day() -> None:
    # 18:00 the evening before, Berlin: across the change to summer time on 29 March.
    start = datetime(2026, 3, 27, 23, 0, tzinfo=UTC)  # 28 March, 00:00 in Berlin (UTC+1)
    daily = task(
        "Water",
        due_date=date(2026, 3, 28),
        remind_at=start - timedelta(hours=6),
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
    )
    following = daily.with_fields(dataclasses.replace(daily.fields, completed=True), NOW).next_occurrence(NOW)
    assert following is not None
    assert following.fields.due_date == date(2026, 3, 29)
    assert following.due_key == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # midnight, still UTC+1
    assert following.fields.remind_at == following.due_key - timedelta(hours=6)


def test_a_task_is_due_at_an_instant_or_on_a_day() -> None:
    with pytest.raises(ValidationFailed) as refused:
        TaskFields("Both", due_at=NOW, due_date=date(2026, 3, 2)).validated()
    assert [error.field for error in refused.value.errors] == ["due_date"]
    with pytest.raises(ValidationFailed, match="needs due_at or due_date"):
        TaskFields("Repeats", recurrence="FREQ=DAILY").validated()
    with pytest.raises(ValidationFailed, match="out of range"):
        TaskFields("Too early", due_date=date(1, 1, 1), time_zone="Asia/Tokyo").validated()
