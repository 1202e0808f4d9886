"""Entities ↔ rows, derived from the entities' dataclasses: a column is named as its field.

An entity keeps what the user writes in a nested `fields` dataclass (`TaskFields`,
`CategoryFields`) beside what the server sets. A row is both, flat, plus columns computed
from the entity (case-folded keys for sorting and uniqueness). Only the fields whose stored
form differs from the domain's (an enum stored as its integer, a tuple as a JSON list) name
a conversion here; a new plain field needs nothing but its column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, String, Table, case, literal_column

from todo_adapters.sqlalchemy.tables import categories, tasks
from todo_core.category import Category, CategoryFields
from todo_core.task import Priority, Task, TaskFields
from todo_core.views import TASK_VIEW_FIELDS

Entity = TypeVar("Entity")


class RowMapping(Generic[Entity]):
    """How one entity type is stored in one table."""

    def __init__(
        self,
        entity: type[Entity],
        fields: type[Any],
        table: Table,
        *,
        stored: Mapping[str, Callable[[Any], Any]] | None = None,
        loaded: Mapping[str, Callable[[Any], Any]] | None = None,
        computed: Mapping[str, Callable[[Entity], Any]] | None = None,
    ) -> None:
        self._entity = entity
        self._fields = fields
        self._own = tuple(field.name for field in dataclasses.fields(entity) if field.name != "fields")  # type: ignore[arg-type]
        self._written = tuple(field.name for field in dataclasses.fields(fields))
        self._stored = dict(stored or {})
        self._loaded = dict(loaded or {})
        self._computed = dict(computed or {})
        self.names = self._own + self._written
        missing = [name for name in (*self.names, *self._computed) if name not in table.c]
        if missing:
            raise LookupError(f"table {table.name!r} has no column for {missing}: add it and its migration")
        #: The columns an entity is read from, in the order `from_row` expects.
        self.columns: list[Column[Any]] = [table.c[name] for name in self.names]

    def to_row(self, entity: Entity) -> dict[str, Any]:
        """Every column of the entity's row."""
        written = entity.fields  # type: ignore[attr-defined]
        row = {name: getattr(entity, name) for name in self._own}
        row.update({name: getattr(written, name) for name in self._written})
        for name, store in self._stored.items():
            row[name] = store(row[name])
        for name, compute in self._computed.items():
            row[name] = compute(entity)
        return row

    def from_row(self, row: Sequence[Any]) -> Entity:
        """The entity from a row of `columns`, in their order."""
        values = dict(zip(self.names, row, strict=True))
        for name, load in self._loaded.items():
            values[name] = load(values[name])
        own = {name: values[name] for name in self._own}
        fields = self._fields(**{name: values[name] for name in self._written})
        return self._entity(fields=fields, **own)  # type: ignore[call-arg]


TASKS = RowMapping(
    Task,
    TaskFields,
    tasks,
    stored={"priority": int, "tags": list},
    loaded={"priority": Priority, "tags": tuple},
    computed={"title_key": lambda task: task.title_key, "due_key": lambda task: task.due_key},
)

CATEGORIES = RowMapping(Category, CategoryFields, categories, computed={"name_key": lambda category: category.name_key})

#: The columns of a task's view (`TASK_VIEW_FIELDS`), its priority as the label the wire uses
#: (constants in the statement's text, so that it stays the same statement).
_PRIORITY_LABEL = case(
    *((tasks.c.priority == literal_column(str(int(p))), literal_column(f"'{p.label}'", String)) for p in Priority)
)
TASK_VIEW_COLUMNS = [_PRIORITY_LABEL.label(name) if name == "priority" else tasks.c[name] for name in TASK_VIEW_FIELDS]


#: Columns an update never changes: the key, and when the row was made.
FIXED = frozenset({"user_id", "id", "created_at"})
