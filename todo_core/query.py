"""What a user asks of their task list: filters, one sort order and a keyset page.

The in-memory adapter evaluates a query with `matches` and `sort_key`; the SQL adapter
translates the same fields into SQL. The shared contract tests hold both to one meaning.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core.errors import FieldError, ValidationFailed
from todo_core.task import TAG_MAX, TAGS_MAX, Priority, Task
from todo_core.text import comparison_key, text_error
from todo_core.timestamps import as_utc

LIMIT_MAX = 200
LIMIT_DEFAULT = 50
SEARCH_MAX = 200


class Status(enum.StrEnum):
    ALL = "all"
    PENDING = "pending"
    COMPLETED = "completed"


class SortField(enum.StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    DUE_AT = "due_at"
    PRIORITY = "priority"
    TITLE = "title"
    #: The user's own order among siblings (`Task.position`).
    POSITION = "position"


@dataclass(frozen=True, slots=True)
class Sort:
    field: SortField = SortField.CREATED_AT
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> Sort:
        """`created_at` or `-created_at`. :raises ValueError: an unknown field."""
        return cls(SortField(text.removeprefix("-")), text.startswith("-"))

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field.value


# A position in a sorted list: the sort value of the last row seen (None for a missing
# due date) and its id, which breaks ties.
Position = tuple[Any, UUID]


@dataclass(frozen=True, slots=True)
class TaskQuery:
    status: Status = Status.ALL
    priorities: frozenset[Priority] = frozenset()
    tags: tuple[str, ...] = ()
    category_id: UUID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    #: Only tasks completed at or after this instant (and so changed since: a task's last change
    #: is never before its completion, which lets a store read them from its `updated_at` order).
    completed_since: datetime | None = None
    search: str | None = None
    #: Only the direct steps of this task.
    parent_id: UUID | None = None
    #: True: only tasks without a parent; False: only steps of another task.
    top_level: bool | None = None
    sort: Sort = field(default_factory=Sort)
    limit: int = LIMIT_DEFAULT
    after: Position | None = None

    @property
    def tag_keys(self) -> tuple[str, ...]:
        return tuple(sorted({comparison_key(tag.strip()) for tag in self.tags}))

    def validated(self) -> TaskQuery:
        """This query with its instants in UTC and its search trimmed (None when blank).

        :raises ValidationFailed: an instant without an offset, or text no task could hold.
        """
        errors: list[FieldError] = []

        def instant(name: str, value: datetime | None) -> datetime | None:
            checked = as_utc(name, value) if value is not None else None
            if isinstance(checked, FieldError):
                errors.append(checked)
                return None
            return checked

        due_before, due_after = instant("due_before", self.due_before), instant("due_after", self.due_after)
        completed_since = instant("completed_since", self.completed_since)
        search = (self.search or "").strip() or None
        text_errors = [text_error("q", search, max_length=SEARCH_MAX)] if search else []
        text_errors += [text_error("tag", tag.strip(), min_length=1, max_length=TAG_MAX) for tag in self.tags]
        errors += [error for error in text_errors if error]
        if len(self.tags) > TAGS_MAX:
            errors.append(FieldError("tag", f"at most {TAGS_MAX} tags can be asked for at once"))
        if self.top_level and self.parent_id is not None:
            errors.append(FieldError("top_level", "cannot be true with parent_id: the steps of a task have a parent"))
        if errors:
            raise ValidationFailed(errors)
        return dataclasses.replace(
            self, search=search, due_before=due_before, due_after=due_after, completed_since=completed_since
        )

    def matches(self, task: Task) -> bool:
        """Whether the task passes every filter (the page position aside)."""
        fields = task.fields
        if self.status is Status.PENDING and fields.completed:
            return False
        if self.status is Status.COMPLETED and not fields.completed:
            return False
        if self.priorities and fields.priority not in self.priorities:
            return False
        if self.category_id is not None and fields.category_id != self.category_id:
            return False
        if not set(self.tag_keys) <= set(task.tag_keys):
            return False
        if self.parent_id is not None and fields.parent_id != self.parent_id:
            return False
        if self.top_level is not None and (fields.parent_id is None) != self.top_level:
            return False
        due = task.due_key
        if self.due_before is not None and (due is None or due >= self.due_before):
            return False
        if self.due_after is not None and (due is None or due < self.due_after):
            return False
        since = self.completed_since
        if since is not None and (task.completed_at is None or task.completed_at < since or task.updated_at < since):
            return False
        if self.search:
            needle = self.search.lower()
            if needle not in fields.title.lower() and needle not in fields.description.lower():
                return False
        return True

    def position_of(self, task: Task) -> Position:
        """Where a task stands in this query's order: the page position it ends."""
        return (sort_value(task, self.sort.field), task.id)

    def sort_key(self, task: Task) -> tuple[Any, ...]:
        """A key that orders tasks as this query does when ascending (reverse it when
        descending)."""
        return self.position_key(self.position_of(task))

    def position_key(self, position: Position) -> tuple[Any, ...]:
        """The sort key of a page position. A missing due date sorts last in either direction."""
        value, task_id = position
        if self.sort.field is SortField.DUE_AT:
            missing = value is None
            return (missing != self.sort.descending, value or datetime.min, task_id)
        return (value, task_id)

    def comes_after(self, task: Task, position: Position) -> bool:
        """Whether the task is on a later page than the one that ended at `position`."""
        key, boundary = self.sort_key(task), self.position_key(position)
        return key < boundary if self.sort.descending else key > boundary


def sort_value(task: Task, sort_field: SortField) -> Any:
    fields = task.fields
    match sort_field:
        case SortField.CREATED_AT:
            return task.created_at
        case SortField.UPDATED_AT:
            return task.updated_at
        case SortField.DUE_AT:
            return task.due_key
        case SortField.PRIORITY:
            return int(fields.priority)
        case SortField.TITLE:
            return task.title_key
        case SortField.POSITION:
            return task.position
