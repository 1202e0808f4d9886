"""The task changes a unit of work staged, in order: what the runner turns into events
(`todo_core.outbox`) before it commits, as cosmicpython's unit of work collects the events its
aggregates raised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from todo_core.task import Task


@dataclass(frozen=True, slots=True)
class TaskAdded:
    task: Task


@dataclass(frozen=True, slots=True)
class TaskUpdated:
    """A task's new version, and the task as this unit of work read it before (None: it never
    read it)."""

    task: Task
    before: Task | None


@dataclass(frozen=True, slots=True)
class TaskRemoved:
    user_id: str
    task_id: UUID
    at: datetime


TaskChange = TaskAdded | TaskUpdated | TaskRemoved
