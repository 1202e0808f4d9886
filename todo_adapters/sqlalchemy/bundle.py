"""The repositories of one SQL transaction, as every SQL unit of work hands them out (SQLite
through SQLAlchemy, PostgreSQL through psycopg): a repository is added here once for both."""

from __future__ import annotations

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.import_slices import WriteAhead
from todo_adapters.sqlalchemy.repositories.account import SqlAccountEraser
from todo_adapters.sqlalchemy.repositories.calendar_feeds import SqlCalendarFeedRepository
from todo_adapters.sqlalchemy.repositories.categories import SqlCategoryRepository
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_adapters.sqlalchemy.repositories.idempotency import SqlIdempotencyKeys
from todo_adapters.sqlalchemy.repositories.retention import SqlRetentionRepository
from todo_adapters.sqlalchemy.repositories.settings import SqlSettingsRepository
from todo_adapters.sqlalchemy.repositories.tasks import SqlTaskRepository
from todo_adapters.sqlalchemy.webhooks import SqlWebhookRepository
from todo_core.outbox import StagedTasks
from todo_core.task_changes import TaskChange


class SqlRepositories:
    """`todo_core.ports.Repositories` on one connection; a SQL unit of work is one of these,
    opened (`_open_repositories`) when it enters its transaction."""

    tasks: StagedTasks
    categories: SqlCategoryRepository
    idempotency: SqlIdempotencyKeys
    settings: SqlSettingsRepository
    feeds: SqlCalendarFeedRepository
    account: SqlAccountEraser
    webhooks: SqlWebhookRepository
    retention: SqlRetentionRepository

    def _open_repositories(self, executor: Executor, changes: ChangeNumbers, ahead: WriteAhead | None = None) -> None:
        """`ahead`: where an import's tasks wait for the commit (SQLite, `import_slices.py`)."""
        self.tasks = StagedTasks(SqlTaskRepository(executor, changes, ahead))
        self.categories = SqlCategoryRepository(executor, changes)
        self.idempotency = SqlIdempotencyKeys(executor, changes)
        self.settings = SqlSettingsRepository(executor, changes)
        self.feeds = SqlCalendarFeedRepository(executor)
        self.account = SqlAccountEraser(executor, changes)
        self.webhooks = SqlWebhookRepository(executor)
        self.retention = SqlRetentionRepository(executor)

    def collect_task_changes(self) -> list[TaskChange]:
        return self.tasks.collect()
