"""What the domain needs from the outside world, as protocols the adapters implement, by role:
the repositories a command stages its changes in (`repositories`), the unit of work that hands
them out and commits (`unit_of_work`), the read side that queries take (`reads`), and the
services that are no table of the domain's (`services`).

Repositories read and stage changes; only the unit of work commits. Every method takes the
owning user's id, and every implementation filters by it: a row of another user is, to the
caller, a row that does not exist.
"""

from todo_core.clock import Clock
from todo_core.identity import IdentityVerifier
from todo_core.ports.reads import AccountSnapshot, ChangeFeed, ExportReader, TaskViews
from todo_core.ports.repositories import (
    AccountEraser,
    CalendarFeedRepository,
    CategoryRepository,
    IdempotencyKeys,
    SettingsRepository,
    TaskRepository,
    WebhookRepository,
)
from todo_core.ports.services import ReminderAnnouncer, Retention, WebhookDestinations, WebhookSender
from todo_core.ports.unit_of_work import Repositories, UnitOfWork

__all__ = [
    "AccountEraser",
    "AccountSnapshot",
    "CalendarFeedRepository",
    "CategoryRepository",
    "ChangeFeed",
    "Clock",
    "ExportReader",
    "IdempotencyKeys",
    "IdentityVerifier",
    "ReminderAnnouncer",
    "Repositories",
    "Retention",
    "SettingsRepository",
    "TaskRepository",
    "TaskViews",
    "UnitOfWork",
    "WebhookDestinations",
    "WebhookRepository",
    "WebhookSender",
]
