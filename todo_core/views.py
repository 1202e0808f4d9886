"""The read side (CQRS): a task as queries return it, derived from the entity's own fields.

Commands load a `Task`, apply its rules and commit. Queries (list, get) need none of that:
they return *views*, the task's public fields by name, ready for the wire. The names come
from the `Task` and `TaskFields` dataclasses, so a field added to the entity is a field of the
view (and of the adapters' projections, which are derived from `TASK_VIEW_FIELDS` too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from todo_core.category import Category, CategoryFields
from todo_core.query import Position, SortField, TaskQuery
from todo_core.task import Priority, Task, TaskFields, due_key
from todo_core.text import comparison_key


def _public_fields(entity: type[Any], written: type[Any], *, private: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """An entity's public fields, in its order: its id (and owner), what the user writes (its
    `fields`, shown field by field), then what the server sets; but the `private` ones."""
    names: list[str] = []
    for field in dataclasses.fields(entity):
        if field.name == "fields":
            names += [f.name for f in dataclasses.fields(written)]
        elif field.name not in private:
            names.append(field.name)
    return tuple(names)


#: The public fields of a task, its owner's `user_id` among them: front ends build URLs from it.
TASK_VIEW_FIELDS = _public_fields(Task, TaskFields)
#: A category's owner is the path's user, and no client asks a category for it.
CATEGORY_VIEW_FIELDS = _public_fields(Category, CategoryFields, private=frozenset({"user_id"}))

#: A task's public fields by name. Values are plain data (str, int, bool, None, lists) or
#: UUIDs and aware datetimes; `priority` is its label ("none", "low", ...).
TaskView = Mapping[str, Any]


def task_view(task: Task) -> dict[str, Any]:
    """The view of an entity: what a query would return for it."""
    return _view(task, TASK_VIEW_FIELDS, priority=task.fields.priority.label, tags=list(task.fields.tags))


def category_view(category: Category) -> dict[str, Any]:
    """A category as responses show it."""
    return _view(category, CATEGORY_VIEW_FIELDS)


def _view(entity: Any, names: tuple[str, ...], **shown: Any) -> dict[str, Any]:
    written = entity.fields
    values = {field.name: getattr(written, field.name) for field in dataclasses.fields(written)}
    values.update(shown)
    return {name: values[name] if name in values else getattr(entity, name) for name in names}


def instant_text(moment: datetime) -> str:
    """An instant as every response writes it: RFC 3339 in UTC (`+00:00`), with the fraction
    of a second only as long as it needs to be (`…:05.12+00:00`, `…:05+00:00`). PostgreSQL's
    JSON writes timestamps this way, so the views it renders and those built here agree."""
    text = moment.astimezone(UTC).isoformat(timespec="microseconds")  # …THH:MM:SS.ffffff+00:00
    return text[:19] + text[19:26].rstrip("0").rstrip(".") + text[26:]


def position_of_json(query: TaskQuery, view: Mapping[str, Any]) -> Position:
    """Where a task stands in the query's order (see `TaskQuery.position_of`), read from its
    view as parsed back from JSON: instants and ids as text, the priority as its label."""
    value: Any = view[query.sort.field.value]
    if query.sort.field is SortField.PRIORITY:
        value = int(Priority.from_label(value))
    elif query.sort.field is SortField.TITLE:
        value = comparison_key(value)
    elif query.sort.field is SortField.DUE_AT:
        due_at = datetime.fromisoformat(value) if value is not None else None
        due_date = date.fromisoformat(view["due_date"]) if view["due_date"] is not None else None
        value = due_key(due_at, due_date, view["time_zone"])
    elif query.sort.field is not SortField.POSITION:  # an instant
        value = datetime.fromisoformat(value)
    return value, UUID(view["id"])


@dataclass(frozen=True, slots=True)
class ViewPage:
    """One page of a task list, and where the next one starts (None on the last page).

    Each item serializes (with orjson) to the task's public JSON: a `TaskView` mapping (in
    memory), or the same JSON already rendered by the database (PostgreSQL and SQLite).
    """

    items: Sequence[object]
    next_after: Position | None


@dataclass(frozen=True, slots=True)
class VersionedView:
    """One task as a query returns it, with its version (the ETag) alongside."""

    view: object
    version: int
