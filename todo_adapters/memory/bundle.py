"""The repositories of one in-memory unit of work (`todo_core.ports.Repositories`), as
`todo_adapters.sqlalchemy.bundle` is the SQL units of work's: a repository is added here once."""

from __future__ import annotations

from todo_adapters.memory.repositories.account import InMemoryAccountEraser
from todo_adapters.memory.repositories.calendar_feeds import InMemoryCalendarFeedRepository
from todo_adapters.memory.repositories.categories import InMemoryCategoryRepository
from todo_adapters.memory.repositories.idempotency import InMemoryIdempotencyKeys
from todo_adapters.memory.repositories.settings import InMemorySettingsRepository
from todo_adapters.memory.repositories.tasks import InMemoryTaskRepository
from todo_adapters.memory.tables import InMemoryStore, Staging, Turns
from todo_adapters.memory.webhooks import InMemoryWebhookRepository
from todo_core.outbox import StagedTasks
from todo_core.task_changes import TaskChange


class InMemoryRepositories:
    """The repositories on one unit of work's view of the store, opened (`_open_repositories`)
    when it enters."""

    tasks: StagedTasks
    categories: InMemoryCategoryRepository
    idempotency: InMemoryIdempotencyKeys
    settings: InMemorySettingsRepository
    feeds: InMemoryCalendarFeedRepository
    account: InMemoryAccountEraser
    webhooks: InMemoryWebhookRepository

    def _open_repositories(self, store: InMemoryStore, view: Staging, turns: Turns) -> None:
        self.tasks = StagedTasks(InMemoryTaskRepository(view, turns))
        self.categories = InMemoryCategoryRepository(view, turns)
        self.idempotency = InMemoryIdempotencyKeys(store, view, turns)
        self.settings = InMemorySettingsRepository(store, view)
        self.feeds = InMemoryCalendarFeedRepository(view)
        self.account = InMemoryAccountEraser(view, turns)
        self.webhooks = InMemoryWebhookRepository(store.webhooks)

    def collect_task_changes(self) -> list[TaskChange]:
        return self.tasks.collect()
