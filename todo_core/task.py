"""The Task entity and the rules every task obeys."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from todo_core import ordering, recurrence, time_zones
from todo_core.errors import FieldError, ValidationFailed
from todo_core.ids import new_id
from todo_core.text import comparison_key, text_error
from todo_core.timestamps import as_utc

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
TAGS_MAX = 20
TAG_MAX = 50


class Priority(enum.IntEnum):
    """How urgent a task is; the integer order is the sort order."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.upper()]


@dataclass(frozen=True, slots=True)
class TaskFields:
    """What a user writes on a task: everything but the server-set fields."""

    title: str
    description: str = ""
    completed: bool = False
    priority: Priority = Priority.NONE
    due_at: datetime | None = None
    #: The day an all-day task is due (in its time zone): a task has `due_at`, this or neither.
    due_date: date | None = None
    remind_at: datetime | None = None
    recurrence: str | None = None
    #: The IANA zone the task lives in: its repeat rule steps on that wall clock. None, until a
    #: use case gives it the user's setting (`validated` alone gives it `time_zones.DEFAULT`).
    time_zone: str | None = None
    tags: tuple[str, ...] = ()
    category_id: UUID | None = None
    #: The task this one is a step of (one of the same user's; see `todo_core.subtasks`).
    parent_id: UUID | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> TaskFields:
        """Fields from plain values by name: a priority may be its label, tags any sequence.

        :raises TypeError: a name that is not a field (a bug of the caller's, not of the user's).
        """
        return cls(**{name: _plain_to_field(name, value) for name, value in values.items()})

    def validated(self) -> TaskFields:
        """Return these fields trimmed and normalised.

        :raises ValidationFailed: listing every field that breaks a rule.
        """
        errors: list[FieldError] = []

        def keep(result: Any) -> Any:
            if isinstance(result, FieldError):
                errors.append(result)
                return None
            return result

        title = self.title.strip()
        keep(text_error("title", title, min_length=1, max_length=TITLE_MAX))
        keep(text_error("description", self.description, max_length=DESCRIPTION_MAX))
        due_at = keep(as_utc("due_at", self.due_at)) if self.due_at else None
        remind_at = keep(as_utc("remind_at", self.remind_at)) if self.remind_at else None
        tags = keep(normalise_tags(self.tags))
        time_zone = time_zones.DEFAULT if self.time_zone is None else self.time_zone
        zone_error = time_zones.zone_error("time_zone", time_zone)
        if zone_error:
            errors.append(zone_error)
        if self.due_date is not None and self.due_at is not None:
            errors.append(
                FieldError("due_date", "cannot be given with due_at: a task is due on a day or at an instant")
            )
        elif self.due_date is not None and not zone_error:
            try:
                time_zones.start_of_day(self.due_date, time_zone)
            except OverflowError:
                errors.append(FieldError("due_date", "is out of range"))
        due = due_at or self.due_date
        rule = None
        if self.recurrence is not None:
            rule = keep(recurrence.parse(self.recurrence))
            if rule and self.due_at is None and self.due_date is None:
                errors.append(
                    FieldError("recurrence", "needs due_at or due_date: a repeating task repeats from its due date")
                )
            elif rule and due and not zone_error:
                keep(recurrence.check_with_start(rule, due, time_zone))
        if errors:
            raise ValidationFailed(errors)
        return dataclasses.replace(
            self,
            title=title,
            due_at=due_at,
            remind_at=remind_at,
            recurrence=rule.text if rule else None,
            time_zone=time_zone,
            tags=tags,
        )

    def merged(self, changes: Mapping[str, Any]) -> TaskFields:
        """These fields with a JSON merge patch applied (absent: unchanged; None: cleared).

        :raises ValidationFailed: a field that cannot be cleared is set to None.
        """
        values: dict[str, Any] = {}
        errors = []
        for name, value in changes.items():
            if value is None and name in _NOT_NULLABLE:
                errors.append(FieldError(name, "cannot be null"))
            elif value is None:
                value = _DEFAULTS[name]
            values[name] = _plain_to_field(name, value)
        if errors:
            raise ValidationFailed(errors)
        return dataclasses.replace(self, **values)


#: What a merge patch's null sets a field to: its default ("", (), none, or None; for
#: `time_zone`, None: the user's setting).
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TaskFields)}
#: Fields a merge patch cannot clear: a task always has a title and a completion state.
_NOT_NULLABLE = frozenset({"title", "completed"})


def _plain_to_field(name: str, value: Any) -> Any:
    if name == "priority" and isinstance(value, str):
        return Priority.from_label(value)
    if name == "tags" and value is not None:
        return tuple(value)
    return value


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...] | FieldError:
    """Trim each tag, drop later case-insensitive repeats, keep the order; or say what is wrong."""
    kept: dict[str, str] = {}
    for position, raw in enumerate(tags):
        tag = raw.strip()
        error = text_error(f"tags[{position}]", tag, min_length=1, max_length=TAG_MAX)
        if error:
            return error
        kept.setdefault(comparison_key(tag), tag)
    if len(kept) > TAGS_MAX:
        return FieldError("tags", f"must hold at most {TAGS_MAX} distinct tags")
    return tuple(kept.values())


@dataclass(frozen=True, slots=True)
class Task:
    """A user's task. Immutable: every change makes a new version."""

    id: UUID
    user_id: str
    fields: TaskFields
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    next_occurrence_id: UUID | None = None
    #: Where the task stands among its siblings (see `todo_core.ordering`).
    position: str = ordering.FIRST

    @property
    def due_key(self) -> datetime | None:
        """When the task is due, as lists filter and sort it: `due_at`, or the start of the
        `due_date` in the task's zone."""
        return _due_key(self.fields)

    @property
    def tag_keys(self) -> tuple[str, ...]:
        return tuple(comparison_key(tag) for tag in self.fields.tags)

    @property
    def title_key(self) -> str:
        return comparison_key(self.fields.title)

    @classmethod
    def new(cls, user_id: str, fields: TaskFields, now: datetime, position: str = ordering.FIRST) -> Task:
        """A new task, version 1, with fields already validated, at `position` among its siblings."""
        return cls(
            id=new_id(),
            user_id=user_id,
            fields=fields,
            completed_at=now if fields.completed else None,
            created_at=now,
            updated_at=now,
            version=1,
            position=position,
        )

    def moved(self, position: str, now: datetime) -> Task:
        """This task at another position among its siblings, as the next version."""
        return dataclasses.replace(self, position=position, updated_at=now, version=self.version + 1)

    def with_fields(self, fields: TaskFields, now: datetime) -> Task:
        """This task with new (validated) fields, as the next version.

        Completing stamps `completed_at` and re-opening clears it. The link to the next
        occurrence stays, so a series never forks however often one task is toggled.
        """
        completed_at = self.completed_at
        if fields.completed and not self.fields.completed:
            completed_at = now
        elif not fields.completed:
            completed_at = None
        return dataclasses.replace(
            self,
            fields=fields,
            completed_at=completed_at,
            updated_at=now,
            version=self.version + 1,
        )

    def next_occurrence(self, now: datetime, position: str = ordering.FIRST) -> Task | None:
        """The open task that follows this one in its series (at `position` among its
        siblings), or None when the series ends. The reminder keeps its distance from the due
        time (an all-day task's: the start of its day)."""
        fields = self.fields
        due = fields.due_at or fields.due_date
        if fields.recurrence is None or due is None:
            return None
        rule = recurrence.parse(fields.recurrence)
        if isinstance(rule, FieldError):
            return None
        zone = fields.time_zone or time_zones.DEFAULT
        following = recurrence.next_occurrence(rule, due, zone)
        if following is None:
            return None
        next_due, next_rule = following
        next_fields = dataclasses.replace(fields, completed=False, recurrence=next_rule.text)
        if isinstance(next_due, datetime):
            next_fields = dataclasses.replace(next_fields, due_at=next_due)
        else:
            next_fields = dataclasses.replace(next_fields, due_date=next_due)
        due_key, next_due_key = _due_key(fields), _due_key(next_fields)
        if fields.remind_at is not None and due_key is not None and next_due_key is not None:
            try:
                next_fields = dataclasses.replace(next_fields, remind_at=next_due_key + (fields.remind_at - due_key))
            except OverflowError:  # the reminder would fall after the year 9999
                next_fields = dataclasses.replace(next_fields, remind_at=None)
        return Task.new(self.user_id, next_fields, now, position)


def _due_key(fields: TaskFields) -> datetime | None:
    return due_key(fields.due_at, fields.due_date, fields.time_zone)


def due_key(due_at: datetime | None, due_date: date | None, time_zone: str | None) -> datetime | None:
    """When a task is due, as lists filter and sort it: `due_at`, or the start of the all-day
    `due_date` in the task's zone."""
    if due_date is not None:
        return time_zones.start_of_day(due_date, time_zone or time_zones.DEFAULT)
    return due_at
