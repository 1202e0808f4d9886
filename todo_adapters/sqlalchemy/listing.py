"""The task-list statement, built once per *shape* of query and reused with new parameters.

A shape is what changes the SQL (which filters are present, the sort, the kind of page
position); the values (the user, the tags, the position...) are bound parameters. Building
and compiling a statement costs far more than running it, so each shape is built once.

Every order is one an index provides, in both directions, so a page costs the same on the
first page and the thousandth, for a user with 50 tasks or 100 000: `(user_id, <sort
column>, id)` scanned forward or backward. A missing due date sorts last either way, which
no single index order gives; the due-date order is therefore read as two index ranges (dated
tasks, then undated ones) of at most one page each, merged and cut to a page.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    UnaryExpression,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
    union_all,
)

from todo_adapters.sqlalchemy.mapping import TASK_VIEW_COLUMNS
from todo_adapters.sqlalchemy.tables import task_tags, tasks
from todo_adapters.sqlalchemy.visibility import committed_tasks
from todo_core.query import SortField, Status, TaskQuery

SORT_COLUMNS = {
    SortField.CREATED_AT: tasks.c.created_at,
    SortField.UPDATED_AT: tasks.c.updated_at,
    # When a task is due as lists see it: `due_at`, or the start of an all-day task's day.
    SortField.DUE_AT: tasks.c.due_key,
    SortField.PRIORITY: tasks.c.priority,
    SortField.TITLE: tasks.c.title_key,
    SortField.POSITION: tasks.c.position,
}


class Shape(NamedTuple):
    status: Status
    priorities: bool
    tags: bool
    category: bool
    parent: bool
    top_level: bool | None
    due_before: bool
    due_after: bool
    completed_since: bool
    search: bool
    sort: SortField
    descending: bool
    #: None on the first page; otherwise whether the last page ended on a missing sort value.
    after_missing: bool | None

    @classmethod
    def of(cls, query: TaskQuery) -> Shape:
        return cls(
            query.status,
            bool(query.priorities),
            bool(query.tags),
            query.category_id is not None,
            query.parent_id is not None,
            query.top_level,
            query.due_before is not None,
            query.due_after is not None,
            query.completed_since is not None,
            bool(query.search),
            query.sort.field,
            query.sort.descending,
            None if query.after is None else query.after[0] is None,
        )


def parameters(user_id: str, query: TaskQuery) -> dict[str, Any]:
    """The values a statement of the query's shape is run with."""
    values: dict[str, Any] = {"user_id": user_id, "limit": query.limit + 1}
    if query.priorities:
        values["priorities"] = sorted(int(priority) for priority in query.priorities)
    if query.tags:
        values["tag_keys"] = list(query.tag_keys)
        values["tag_count"] = len(query.tag_keys)
    if query.category_id is not None:
        values["category_id"] = query.category_id
    if query.parent_id is not None:
        values["parent_id"] = query.parent_id
    if query.due_before is not None:
        values["due_before"] = query.due_before
    if query.due_after is not None:
        values["due_after"] = query.due_after
    if query.completed_since is not None:
        values["completed_since"] = query.completed_since
    if query.search:
        values["pattern"] = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if query.after is not None:
        values["after_value"], values["after_id"] = query.after
    return values


def page_statement(shape: Shape, dialect: str) -> Select[Any]:
    """The columns of `TASK_VIEW_COLUMNS` for one page (plus one row, to tell whether more
    follow) of a query of this shape, in its order."""
    column = SORT_COLUMNS[shape.sort]
    if shape.sort is not SortField.DUE_AT:
        return _ordered(_selected(shape, dialect, _after(shape, column)), shape.descending, column)
    if shape.tags or shape.search:
        # These filters pick their rows first, whatever the order: one pass over them is
        # cheaper than one per range.
        return _ordered(_selected(shape, dialect, _after_undated_last(shape)), shape.descending, _undated_last(shape))
    # Dated tasks after the position, then undated ones: each an index range of one page.
    parts = []
    if shape.after_missing is not True:
        dated = _selected(shape, dialect, column.is_not(None), _after(shape, column)).add_columns(tasks.c.due_key)
        parts.append(_ordered(dated, shape.descending, column))
    after_undated = _after(shape, tasks.c.id) if shape.after_missing else None
    undated = _selected(shape, dialect, column.is_(None), after_undated).add_columns(tasks.c.due_key)
    parts.append(_ordered(undated, shape.descending, column))  # by (due_key, id): the index's order
    merged = union_all(*(select(part.subquery()) for part in parts)).subquery("merged")
    order = merged.c.due_key.desc() if shape.descending else merged.c.due_key.asc()
    ids = merged.c.id.desc() if shape.descending else merged.c.id.asc()
    shown = [merged.c[column.name] for column in TASK_VIEW_COLUMNS]
    return select(*shown).order_by(order.nulls_last(), ids).limit(bindparam("limit"))


def _undated_last(shape: Shape) -> Any:
    return (tasks.c.due_key.desc() if shape.descending else tasks.c.due_key.asc()).nulls_last()


def _after_undated_last(shape: Shape) -> ColumnElement[bool] | None:
    """`_after` for the due-date order in one statement: undated tasks come last."""
    if shape.after_missing is None:
        return None
    later = _after(shape, tasks.c.id if shape.after_missing else tasks.c.due_key)
    assert later is not None
    return and_(tasks.c.due_key.is_(None), later) if shape.after_missing else or_(later, tasks.c.due_key.is_(None))


def _selected(shape: Shape, dialect: str, *extra: ColumnElement[bool] | None) -> Select[Any]:
    conditions = [tasks.c.user_id == bindparam("user_id"), *_filters(shape, dialect)]
    if dialect == "sqlite":  # an import's tasks written ahead of its commit are not shown
        conditions.append(committed_tasks())
    return select(*TASK_VIEW_COLUMNS).where(*conditions, *(condition for condition in extra if condition is not None))


def _ordered(statement: Select[Any], descending: bool, *columns: Any) -> Select[Any]:
    """Ordered by `columns` (a column, or an ordering already made) then id, one page."""
    keys = [*columns, tasks.c.id]
    order = [key if isinstance(key, UnaryExpression) else key.desc() if descending else key.asc() for key in keys]
    return statement.order_by(*order).limit(bindparam("limit"))


def _filters(shape: Shape, dialect: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if shape.status is Status.PENDING:
        conditions.append(tasks.c.completed.is_(False))
    elif shape.status is Status.COMPLETED:
        conditions.append(tasks.c.completed.is_(True))
    if shape.priorities:
        conditions.append(_one_of(tasks.c.priority, "priorities", dialect))
    if shape.category:
        conditions.append(tasks.c.category_id == bindparam("category_id"))
    if shape.parent:
        conditions.append(tasks.c.parent_id == bindparam("parent_id", type_=tasks.c.parent_id.type))
    if shape.top_level is not None:
        conditions.append(tasks.c.parent_id.is_(None) if shape.top_level else tasks.c.parent_id.is_not(None))
    if shape.tags:
        tagged = (
            select(task_tags.c.task_id)
            .where(task_tags.c.user_id == bindparam("user_id"), _one_of(task_tags.c.tag_key, "tag_keys", dialect))
            .group_by(task_tags.c.task_id)
            .having(func.count() == bindparam("tag_count"))
        )
        conditions.append(tasks.c.id.in_(tagged))
    if shape.due_before:
        conditions.append(tasks.c.due_key < bindparam("due_before", type_=tasks.c.due_key.type))
    if shape.due_after:
        conditions.append(tasks.c.due_key >= bindparam("due_after", type_=tasks.c.due_key.type))
    if shape.completed_since:
        since: Any = bindparam("completed_since", type_=tasks.c.completed_at.type)
        # The second bound is implied by the first (a task changes when it is completed) and lets
        # the `(user_id, updated_at, id)` index stop at the boundary.
        conditions += [tasks.c.completed_at >= since, tasks.c.updated_at >= since]
    if shape.search:
        pattern: Any = bindparam("pattern")
        matches = [column.ilike(pattern, escape="\\") for column in (tasks.c.title, tasks.c.description)]
        conditions.append(or_(*matches))
    return conditions


def _one_of(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    # PostgreSQL takes the list as one array parameter, so the statement text does not vary
    # with its length (and a prepared statement serves every length).
    if dialect == "postgresql":
        return column == any_(bindparam(name))  # type: ignore[no-any-return]
    return column.in_(bindparam(name, expanding=True))  # type: ignore[no-any-return]


def _after(shape: Shape, column: Any) -> ColumnElement[bool] | None:
    """Rows on later pages than the one that ended at the bound position."""
    if shape.after_missing is None:
        return None
    last_id = bindparam("after_id", type_=tasks.c.id.type)
    left: Any = tasks.c.id
    right: Any = last_id
    if column is not tasks.c.id:
        left, right = tuple_(column, tasks.c.id), tuple_(bindparam("after_value", type_=column.type), last_id)
    later: ColumnElement[bool] = left < right if shape.descending else left > right
    return later
