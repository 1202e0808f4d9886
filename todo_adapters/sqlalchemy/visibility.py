"""Which of a user's task rows a read may show: those of committed changes only.

On SQLite a large import writes its tasks ahead of its commit, in slices of their own (see
`import_slices.py`), under the user's next change number; the user's number itself moves only
when the import commits. A read of the user's tasks (lists, one task, sync, exports, calendars,
tags, reminders) therefore shows only rows at or below the user's number: the rows of an import
still being written are not there for it, and all of them appear at once when it commits. On
PostgreSQL an import is one transaction, and readers never see it early: its statements go
without the condition.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, func, select

from todo_adapters.sqlalchemy.tables import task_tags, tasks, user_changes

# The user named by the statement's `user_id` value: one lookup per statement, not per row.
_NUMBER = select(user_changes.c.seq).where(user_changes.c.user_id == bindparam("user_id")).scalar_subquery()
_IMPORTING = select(user_changes.c.importing).where(user_changes.c.user_id == bindparam("user_id")).scalar_subquery()


def committed_tasks() -> ColumnElement[bool]:
    """The user's tasks written by committed changes (a user without a number has only those)."""
    return tasks.c.change_seq <= func.coalesce(_NUMBER, tasks.c.change_seq)


def committed_tags() -> ColumnElement[bool]:
    """The tags of the user's tasks written by committed changes: looked up task by task only
    while an import of the user's is being written."""
    task = tasks.alias("tagged")
    written: Any = exists().where(
        task.c.user_id == task_tags.c.user_id,
        task.c.id == task_tags.c.task_id,
        task.c.change_seq <= _NUMBER,
    )
    committed: ColumnElement[bool] = _IMPORTING.is_(None) | written
    return committed
