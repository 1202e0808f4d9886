"""The rules every task obeys, checked on the fields alone (no store, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from todo_core.errors import ValidationFailed
from todo_core.task import DESCRIPTION_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX, Priority, TaskFields

DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rejection(fields: TaskFields) -> dict[str, str]:
    """The broken rules, by field, that validating these fields reports."""
    with pytest.raises(ValidationFailed) as raised:
        fields.validated()
    return {error.field: error.message for error in raised.value.errors}


# Title


def test_title_is_trimmed() -> None:
    assert TaskFields(title="  Buy milk \t\n").validated().title == "Buy milk"


@pytest.mark.parametrize("title", ["", "   ", "\t\n "])
def test_blank_title_is_refused(title: str) -> None:
    assert rejection(TaskFields(title=title)) == {"title": "must not be blank"}


def test_title_of_200_characters_is_accepted_even_with_surrounding_spaces() -> None:
    title = "x" * TITLE_MAX
    assert TaskFields(title=f"  {title}  ").validated().title == title


def test_title_of_201_characters_is_refused() -> None:
    assert "at most 200" in rejection(TaskFields(title="x" * (TITLE_MAX + 1)))["title"]


def test_title_length_counts_characters_not_bytes() -> None:
    assert TaskFields(title="é" * TITLE_MAX).validated().title == "é" * TITLE_MAX


# Description


def test_description_defaults_to_empty() -> None:
    assert TaskFields(title="t").validated().description == ""


def test_description_of_10000_characters_is_accepted() -> None:
    description = "d" * DESCRIPTION_MAX
    assert TaskFields(title="t", description=description).validated().description == description


def test_description_over_10000_characters_is_refused() -> None:
    errors = rejection(TaskFields(title="t", description="d" * (DESCRIPTION_MAX + 1)))
    assert "at most 10000" in errors["description"]


# Text no store can keep


@pytest.mark.parametrize(
    ("field", "fields"),
    [
        ("title", TaskFields(title="a\x00b")),
        ("description", TaskFields(title="t", description="a\x00b")),
        ("tags[1]", TaskFields(title="t", tags=("ok", "a\x00b"))),
    ],
)
def test_nul_character_is_refused(field: str, fields: TaskFields) -> None:
    assert "NUL" in rejection(fields)[field]


@pytest.mark.parametrize(
    ("field", "fields"),
    [
        ("title", TaskFields(title="a\ud800b")),
        ("description", TaskFields(title="t", description="\udfff")),
        ("tags[0]", TaskFields(title="t", tags=("\ud83d",))),
    ],
)
def test_lone_surrogate_is_refused(field: str, fields: TaskFields) -> None:
    assert "surrogate" in rejection(fields)[field]


def test_characters_outside_the_basic_plane_are_accepted() -> None:
    assert TaskFields(title="🎉 party").validated().title == "🎉 party"


def test_every_broken_rule_is_reported_at_once() -> None:
    errors = rejection(TaskFields(title=" ", description="d" * (DESCRIPTION_MAX + 1), due_at=datetime(2026, 3, 2)))
    assert set(errors) == {"title", "description", "due_at"}


# Tags


def test_tags_are_trimmed_and_keep_their_order() -> None:
    assert TaskFields(title="t", tags=(" work ", "home", "\turgent")).validated().tags == ("work", "home", "urgent")


def test_case_insensitive_duplicate_tags_are_dropped_keeping_the_first_spelling() -> None:
    tags = ("Work", "home", "WORK", "work ", "Home", "errand")
    assert TaskFields(title="t", tags=tags).validated().tags == ("Work", "home", "errand")


def test_twenty_distinct_tags_are_accepted() -> None:
    tags = tuple(f"tag{n}" for n in range(TAGS_MAX))
    assert TaskFields(title="t", tags=tags).validated().tags == tags


def test_twenty_one_distinct_tags_are_refused() -> None:
    tags = tuple(f"tag{n}" for n in range(TAGS_MAX + 1))
    assert "at most 20" in rejection(TaskFields(title="t", tags=tags))["tags"]


def test_duplicates_do_not_count_towards_the_twenty_tag_limit() -> None:
    distinct = tuple(f"tag{n}" for n in range(TAGS_MAX))
    repeated = distinct + tuple(tag.upper() for tag in distinct)
    assert TaskFields(title="t", tags=repeated).validated().tags == distinct


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_tag_is_refused_naming_its_position(blank: str) -> None:
    assert rejection(TaskFields(title="t", tags=("ok", blank))) == {"tags[1]": "must not be blank"}


def test_tag_of_50_characters_is_accepted_and_51_refused() -> None:
    longest = "t" * TAG_MAX
    assert TaskFields(title="t", tags=(f" {longest} ",)).validated().tags == (longest,)
    assert "at most 50" in rejection(TaskFields(title="t", tags=(longest + "t",)))["tags[0]"]


# Datetimes


@pytest.mark.parametrize("field", ["due_at", "remind_at"])
def test_datetime_without_an_offset_is_refused(field: str) -> None:
    fields = TaskFields(title="t", **{field: datetime(2026, 3, 2, 9, 0)})
    assert "timezone offset" in rejection(fields)[field]


@pytest.mark.parametrize("field", ["due_at", "remind_at"])
def test_datetime_is_stored_in_utc_as_the_same_instant(field: str) -> None:
    paris = datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    stored = getattr(TaskFields(title="t", **{field: paris}).validated(), field)
    assert stored == paris
    assert stored.tzinfo is UTC
    assert (stored.hour, stored.minute) == (9, 30)


def test_missing_dates_stay_missing() -> None:
    fields = TaskFields(title="t").validated()
    assert (fields.due_at, fields.remind_at) == (None, None)


# Priority


def test_priority_defaults_to_none() -> None:
    assert TaskFields(title="t").validated().priority is Priority.NONE


def test_priorities_order_none_low_medium_high() -> None:
    shuffled = [Priority.HIGH, Priority.NONE, Priority.MEDIUM, Priority.LOW]
    assert sorted(shuffled) == [Priority.NONE, Priority.LOW, Priority.MEDIUM, Priority.HIGH]


@pytest.mark.parametrize("label", ["none", "low", "medium", "high"])
def test_priority_labels_round_trip(label: str) -> None:
    assert Priority.from_label(label).label == label


# Recurrence on a task (the rule language itself is in test_recurrence.py)


def test_repeating_task_needs_a_due_date() -> None:
    assert "needs due_at" in rejection(TaskFields(title="t", recurrence="FREQ=DAILY"))["recurrence"]


def test_repeating_task_with_a_due_date_keeps_its_rule_normalised() -> None:
    fields = TaskFields(title="t", due_at=DUE, recurrence="rrule:freq=weekly;byday=mo").validated()
    assert fields.recurrence == "FREQ=WEEKLY;BYDAY=MO"


def test_invalid_rule_is_refused_on_the_recurrence_field() -> None:
    assert "FREQ is required" in rejection(TaskFields(title="t", due_at=DUE, recurrence="INTERVAL=2"))["recurrence"]


# Merge patch semantics


def test_absent_fields_are_left_unchanged_by_a_patch() -> None:
    original = TaskFields(title="t", description="d", priority=Priority.HIGH, tags=("a",), due_at=DUE)
    assert original.merged({}) == original
    assert original.merged({"title": "new"}) == TaskFields(
        title="new", description="d", priority=Priority.HIGH, tags=("a",), due_at=DUE
    )


def test_null_in_a_patch_clears_description_tags_due_date_and_category() -> None:
    original = TaskFields(title="t", description="d", tags=("a",), due_at=DUE, remind_at=DUE, category_id=uuid4())
    cleared = original.merged(
        {"description": None, "tags": None, "due_at": None, "remind_at": None, "category_id": None}
    )
    assert cleared == TaskFields(title="t")


def test_null_priority_in_a_patch_resets_it_to_none() -> None:
    assert TaskFields(title="t", priority=Priority.HIGH).merged({"priority": None}).priority is Priority.NONE


@pytest.mark.parametrize("field", ["title", "completed"])
def test_null_title_or_completed_in_a_patch_is_refused(field: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        TaskFields(title="t").merged({field: None})
    assert [error.field for error in raised.value.errors] == [field]
