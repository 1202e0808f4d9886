"""Export and import: everything of a user's as one document, and back into any account.

The document (format `todo-export`, version 1) holds the user's settings, categories and
tasks. Its ids are the exporting account's; they only link the document's parts together
(a task's `parent_id`, `category_id` and `next_occurrence_id` name other parts of the same
document), and an import gives everything new ids. Tasks come in *structure order*: the
top-level tasks in the user's order, then the steps one level down, each parent's steps
together and in order, and so on (so a parent always comes before its steps); the order of
siblings in the document is their order. Positions, versions and change numbers are the
server's and are not exported.

Kept on import: everything a user wrote, the completion state and `completed_at`, and
`created_at` (of tasks and categories). Set anew: ids, positions, `updated_at` (the import is
a change), `version` 1.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from todo_core.category import Category, CategoryFields
from todo_core.errors import FieldError, ValidationFailed
from todo_core.subtasks import MAX_ANCESTORS
from todo_core.task import Task, TaskFields
from todo_core.text import comparison_key
from todo_core.timestamps import as_utc
from todo_core.user_settings import UserSettings
from todo_core.views import CATEGORY_VIEW_FIELDS, TASK_VIEW_FIELDS, category_view, task_view

FORMAT = "todo-export"
VERSION = 1
#: How many tasks an export reads (and holds) at a time.
EXPORT_PAGE_SIZE = 500
#: The levels of a task tree: a top-level task's is 0, a step's is its parent's plus one.
LEVELS = MAX_ANCESTORS + 1
#: A refused import lists at most this many broken rules (a document of 50,000 bad tasks
#: does not get a 5 MB answer).
ERRORS_MAX = 100

#: What only the server knows and uses: where a task stands among its siblings (the document's
#: order says it), and the versions; and the owner (the document is one account's; an import
#: gives its tasks to the account it goes into).
_NOT_EXPORTED = frozenset({"position", "version", "user_id"})
#: A task's fields in a document: its public fields but the server's own (`_NOT_EXPORTED`).
EXPORTED_TASK_FIELDS = tuple(name for name in TASK_VIEW_FIELDS if name not in _NOT_EXPORTED)
EXPORTED_CATEGORY_FIELDS = tuple(name for name in CATEGORY_VIEW_FIELDS if name not in _NOT_EXPORTED)


def task_record(task: Task) -> dict[str, Any]:
    """A task as a document holds it."""
    view = task_view(task)
    return {name: view[name] for name in EXPORTED_TASK_FIELDS}


def category_record(category: Category) -> dict[str, Any]:
    """A category as a document holds it."""
    view = category_view(category)
    return {name: view[name] for name in EXPORTED_CATEGORY_FIELDS}


@dataclass(frozen=True, slots=True)
class StructurePosition:
    """A point in structure order: after the task `id` at `position` under `parent_id`, on
    `level` (see `LEVELS`). Within a level, tasks are ordered by parent (the top level has
    none), then position, then id."""

    level: int
    parent_id: UUID | None
    position: str
    id: UUID

    @classmethod
    def of(cls, level: int, task: Task) -> StructurePosition:
        return cls(level, task.fields.parent_id, task.position, task.id)


@dataclass(frozen=True, slots=True)
class ExportPage:
    """Tasks in structure order, and where the next page starts (None: there is none)."""

    tasks: Sequence[Task]
    next: StructurePosition | None


@dataclass(frozen=True, slots=True)
class PortableCategory:
    """A category as a document holds it, by its id in the document."""

    id: UUID
    fields: CategoryFields
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PortableTask:
    """A task as a document holds it. `fields.parent_id`, `fields.category_id` and
    `next_occurrence_id` are ids in the document."""

    id: UUID
    fields: TaskFields
    completed_at: datetime | None = None
    created_at: datetime | None = None
    next_occurrence_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class AccountDocument:
    """A document to import. Without `settings`, the account keeps its own."""

    categories: Sequence[PortableCategory] = ()
    tasks: Sequence[PortableTask] = ()
    settings: UserSettings | None = None


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import made: categories created and merged into existing ones of the same
    name, tasks created, and each document id's new id."""

    categories: int
    merged_categories: int
    tasks: int
    category_ids: Mapping[UUID, UUID]
    task_ids: Mapping[UUID, UUID]


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    """A document whose every rule holds: fields validated (a task without a zone has the
    importing account's), tasks in structure order."""

    categories: Sequence[PortableCategory]
    tasks: Sequence[PortableTask]
    settings: UserSettings | None


class _Errors:
    """The broken rules of a document, each named by where it is (`tasks[17].title`)."""

    def __init__(self) -> None:
        self.found: list[FieldError] = []

    def add(self, where: str, field: str, message: str) -> None:
        self.found.append(FieldError(f"{where}.{field}", message))

    def validated(self, where: str, validate: Callable[[], Any]) -> Any:
        """`validate()`, or None with its errors recorded under `where`."""
        try:
            return validate()
        except ValidationFailed as error:
            self.found += [FieldError(f"{where}.{e.field}", e.message) for e in error.errors]
            return None

    def raise_any(self) -> None:
        if self.found:
            raise ValidationFailed(self.found[:ERRORS_MAX])


def check(document: AccountDocument, time_zone: str) -> CheckedDocument:
    """The document with every field validated as a task's or category's own, tasks without a
    zone given `time_zone`, and its tasks in structure order (the document's order kept among
    siblings).

    :raises ValidationFailed: listing (up to ERRORS_MAX of) the broken rules, each named by where
        it is: a field (`tasks[3].title`), a repeated id, a `parent_id`, `category_id` or
        `next_occurrence_id` that names no task or category of the document, a task under
        itself or more than five levels deep, two categories of the same name.
    """
    errors = _Errors()
    settings = None
    if document.settings is not None:
        settings = errors.validated("settings", document.settings.validated)
    categories = _checked_categories(document.categories, errors)
    category_ids = {category.id for category in document.categories}
    tasks: dict[UUID, tuple[int, PortableTask]] = {}  # as written: what references may name
    checked: list[PortableTask] = []
    for index, task in enumerate(document.tasks):
        where = f"tasks[{index}]"
        if task.id in tasks:
            errors.add(where, "id", f"repeats the id of tasks[{tasks[task.id][0]}]")
            continue
        tasks[task.id] = (index, task)
        fields = task.fields
        if fields.time_zone is None:
            fields = dataclasses.replace(fields, time_zone=time_zone)
        validated = errors.validated(where, fields.validated)
        if validated is not None:
            checked.append(_checked_task(task, validated, where, errors))
    for index, task in tasks.values():
        _check_references(task, f"tasks[{index}]", tasks, category_ids, errors)
    levels = _levels(tasks, errors)
    errors.raise_any()
    # A stable sort: the document's order is kept among siblings.
    return CheckedDocument(categories, sorted(checked, key=lambda task: levels[task.id]), settings)


def _checked_categories(categories: Sequence[PortableCategory], errors: _Errors) -> list[PortableCategory]:
    checked: list[PortableCategory] = []
    ids: dict[UUID, int] = {}
    names: dict[str, int] = {}
    for index, category in enumerate(categories):
        where = f"categories[{index}]"
        if category.id in ids:
            errors.add(where, "id", f"repeats the id of categories[{ids[category.id]}]")
            continue
        ids[category.id] = index
        fields = errors.validated(where, category.fields.validated)
        if fields is None:
            continue
        key = comparison_key(fields.name)
        if key in names:
            errors.add(where, "name", f"repeats the name of categories[{names[key]}] (names are unique in any case)")
            continue
        names[key] = index
        created_at = _instant(category.created_at, where, "created_at", errors)
        checked.append(dataclasses.replace(category, fields=fields, created_at=created_at))
    return checked


def _checked_task(task: PortableTask, fields: TaskFields, where: str, errors: _Errors) -> PortableTask:
    completed_at = _instant(task.completed_at, where, "completed_at", errors)
    if completed_at is not None and not fields.completed:
        errors.add(where, "completed_at", "must be null on a task that is not completed")
    created_at = _instant(task.created_at, where, "created_at", errors)
    return dataclasses.replace(task, fields=fields, completed_at=completed_at, created_at=created_at)


def _instant(value: datetime | None, where: str, field: str, errors: _Errors) -> datetime | None:
    if value is None:
        return None
    moment = as_utc(field, value)
    if isinstance(moment, FieldError):
        errors.add(where, moment.field, moment.message)
        return None
    return moment


def _check_references(
    task: PortableTask,
    where: str,
    tasks: Mapping[UUID, tuple[int, PortableTask]],
    category_ids: set[UUID],
    errors: _Errors,
) -> None:
    parent = task.fields.parent_id
    if parent is not None and parent not in tasks:
        errors.add(where, "parent_id", "is not the id of a task in this document")
    elif parent == task.id:
        errors.add(where, "parent_id", "cannot be the task itself")
    if task.fields.category_id is not None and task.fields.category_id not in category_ids:
        errors.add(where, "category_id", "is not the id of a category in this document")
    following = task.next_occurrence_id
    if following is not None and (following not in tasks or following == task.id):
        errors.add(where, "next_occurrence_id", "is not the id of another task in this document")


def _levels(tasks: Mapping[UUID, tuple[int, PortableTask]], errors: _Errors) -> dict[UUID, int]:
    """Each task's level (0: top level). A task whose parents lead back to it, or that has
    more than MAX_ANCESTORS ancestors, is an error (and gets no level)."""
    levels: dict[UUID, int] = {}
    for task_id, (index, task) in tasks.items():
        ancestors: list[UUID] = []
        parent = task.fields.parent_id
        # Past MAX_ANCESTORS + 1 steps up, the task is too deep whatever lies above.
        while parent is not None and parent in tasks and parent != task_id and len(ancestors) <= MAX_ANCESTORS:
            ancestors.append(parent)
            parent = tasks[parent][1].fields.parent_id
        if parent == task_id and task.fields.parent_id != task_id:
            errors.add(f"tasks[{index}]", "parent_id", "makes a cycle: the task would be one of its own steps")
        elif len(ancestors) > MAX_ANCESTORS:
            errors.add(
                f"tasks[{index}]",
                "parent_id",
                f"nests too deep: a task has at most {MAX_ANCESTORS} ancestors (5 levels)",
            )
        elif parent is None:
            levels[task_id] = len(ancestors)
    return levels


def siblings(tasks: Sequence[PortableTask]) -> dict[UUID | None, list[PortableTask]]:
    """The tasks of a document under each parent (None: the top level), in the document's order."""
    under: dict[UUID | None, list[PortableTask]] = defaultdict(list)
    for task in tasks:
        under[task.fields.parent_id].append(task)
    return under
