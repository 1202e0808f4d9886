"""Use cases of portability: a user's whole account out as one document, and a document in.

The repositories are used directly (not the task use cases): an import makes many tasks in
one unit of work, with positions and links decided for the whole document at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol, TypeVar
from uuid import UUID

from todo_core import ordering
from todo_core.category import Category
from todo_core.clock import Clock
from todo_core.errors import ValidationFailed
from todo_core.ids import new_id
from todo_core.portability import (
    EXPORT_PAGE_SIZE,
    AccountDocument,
    CheckedDocument,
    Imported,
    PortableTask,
    StructurePosition,
    check,
    siblings,
)
from todo_core.ports import AccountSnapshot, ExportReader, UnitOfWork
from todo_core.task import Task
from todo_core.text import comparison_key
from todo_core.use_cases.tasks import check_task_room
from todo_core.user_settings import UserSettings

#: A worker thread that computes for seconds (an import's tasks) lets go of the GIL every this
#: many items. Left to the interpreter's switch interval, the event loop's thread (whose every
#: socket call lets go of the GIL and takes it back) was kept waiting for it: /healthz stalled
#: 1.2-1.5 s during a 16,000-task import under coverage (tests/api/test_portability_bounds.py),
#: under 0.4 s with this.
GIL_TURN_EVERY = 100


@dataclass(frozen=True, slots=True)
class AccountExport:
    """A user's account as one snapshot shows it: the settings and categories, read at once,
    and the tasks, read a page at a time as `task_pages` is iterated."""

    settings: UserSettings
    categories: Sequence[Category]
    task_pages: AsyncIterator[Sequence[Task]]


@contextlib.asynccontextmanager
async def export_account(
    reader: ExportReader, user_id: str, *, page_size: int = EXPORT_PAGE_SIZE
) -> AsyncIterator[AccountExport]:
    """Everything of the user's, read from one snapshot held for the block: at most
    `page_size` tasks are held at a time, whatever the user has.

    :raises StorageUnavailable: the store cannot be reached.
    """
    async with reader.snapshot(user_id) as snapshot:
        settings = await snapshot.settings()
        categories = await snapshot.categories()
        yield AccountExport(settings, categories, _task_pages(snapshot, page_size))


async def _task_pages(snapshot: AccountSnapshot, page_size: int) -> AsyncIterator[Sequence[Task]]:
    after: StructurePosition | None = None
    while True:
        page = await snapshot.tasks(after, page_size)
        if page.tasks:
            yield page.tasks
        if page.next is None:
            return
        after = page.next


T = TypeVar("T")

#: How many tasks an import hands the store at a time.
IMPORT_BATCH = 250


class Offload(Protocol):
    """How a use case runs CPU work of its own (seconds for a large document): its caller
    decides (the REST API, in a worker thread, so that the event loop serves the other requests
    meanwhile; `asyncio.to_thread` is one)."""

    def __call__(self, work: Callable[[], T], /) -> Awaitable[T]: ...


async def inline(work: Callable[[], T]) -> T:
    """Run the work here and now: for callers that do not offload it."""
    return work()


@dataclass(frozen=True, slots=True)
class PreparedImport:
    """A document checked before the unit of work that imports it, in the time zone its tasks
    would take then: `checked`, or why it is refused (which the import raises, after its
    idempotency key: a reused key is told as such)."""

    document: AccountDocument
    time_zone: str
    checked: CheckedDocument | None
    refused: ValidationFailed | None = None


async def prepare_import(
    reader: UnitOfWork, user_id: str, document: AccountDocument, *, offload: Offload = inline
) -> PreparedImport:
    """Check the document outside any writing unit of work: seconds of CPU for a large one,
    which on SQLite would keep every other user's writes waiting behind the writer lock. The
    user's time zone is read first, without a transaction."""
    if document.settings is not None:
        zone = document.settings.time_zone
    else:
        async with reader:
            zone = (await reader.settings.get(user_id)).time_zone
    try:
        return PreparedImport(document, zone, await offload(partial(check, document, zone)))
    except ValidationFailed as refused:
        return PreparedImport(document, zone, None, refused)


async def import_account(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    prepared: PreparedImport,
    *,
    at_most: int | None = None,
    offload: Offload = inline,
) -> Imported:
    """Add everything of the (prepared) document to the user's account, with new ids, in one
    unit of work (so one change number): the tasks' structure, their order among siblings and
    their categories are kept; the top-level tasks go after the user's own, in the document's
    order. The new ids sort as the document's did. A category named as one the user has (in any
    case) is merged into it: its tasks go there, and the user's category keeps its color. The
    document's settings, if any, replace the user's, and a task without a `time_zone` gets the
    zone they name (else the user's). CPU work (the document's check again when the user's zone
    changed meanwhile, the making of its tasks) runs through `offload`.

    :raises ValidationFailed: the document breaks a rule (see `todo_core.portability.check`);
        nothing is imported.
    :raises Conflict: a category of the same name was created meanwhile; nothing is imported.
    :raises TooManyTasks: the document's tasks would take the user past `at_most`; nothing is imported.
    """
    document = prepared.document
    settings = document.settings or await uow.settings.get(user_id)
    checked = prepared.checked
    if settings.time_zone != prepared.time_zone:  # changed meanwhile
        checked = await offload(partial(check, document, settings.time_zone))
    elif prepared.refused is not None:
        raise prepared.refused
    assert checked is not None, "a prepared import is checked or refused"
    await check_task_room(uow, user_id, len(checked.tasks), at_most)
    now = clock.now()
    if checked.settings is not None:
        await uow.settings.put(user_id, checked.settings)

    existing = {category.name_key: category.id for category in await uow.categories.list_for_user(user_id)}
    category_ids: dict[UUID, UUID] = {}
    created = 0
    for written in checked.categories:
        merged_into = existing.get(comparison_key(written.fields.name))
        if merged_into is not None:
            category_ids[written.id] = merged_into
            continue
        category = Category.new(user_id, written.fields, now)
        if written.created_at is not None:
            category = dataclasses.replace(category, created_at=written.created_at)
        await uow.categories.add(category)
        category_ids[written.id] = category.id
        created += 1

    last = await uow.tasks.last_position(user_id, None)
    task_ids, new_tasks = await offload(partial(_new_tasks, checked.tasks, user_id, now, last, category_ids))
    # In batches: a few statements for the store each, not two per task.
    for start in range(0, len(new_tasks), IMPORT_BATCH):
        await uow.tasks.add_many(new_tasks[start : start + IMPORT_BATCH])
    return Imported(
        categories=created,
        merged_categories=len(checked.categories) - created,
        tasks=len(checked.tasks),
        category_ids=category_ids,
        task_ids=task_ids,
    )


def _new_tasks(
    portables: Sequence[PortableTask],
    user_id: str,
    now: datetime,
    last: str | None,
    category_ids: Mapping[UUID, UUID],
) -> tuple[dict[UUID, UUID], list[Task]]:
    """The document's ids, each with its task's new one, and the new tasks, parents first. CPU
    only (offloaded): a large document costs a fraction of a second."""
    # New ids in the order of the document's: lists that break ties by id, and an export's
    # order of each level's groups of siblings (by parent id), stay as they were.
    fresh = sorted(new_id() for _ in portables)
    task_ids = dict(zip(sorted(task.id for task in portables), fresh, strict=True))
    positions: dict[UUID, str] = {}
    for parent, group in siblings(portables).items():
        keys = ordering.appended(last if parent is None else None, len(group))
        positions.update((task.id, key) for task, key in zip(group, keys, strict=True))
    new_tasks: list[Task] = []
    for n, portable in enumerate(portables):  # parents first
        if n % GIL_TURN_EVERY == 0:
            time.sleep(0)  # see GIL_TURN_EVERY
        fields = portable.fields
        fields = dataclasses.replace(
            fields,
            parent_id=task_ids[fields.parent_id] if fields.parent_id is not None else None,
            category_id=category_ids[fields.category_id] if fields.category_id is not None else None,
        )
        task = Task.new(user_id, fields, now, positions[portable.id])
        following = portable.next_occurrence_id
        new_tasks.append(
            dataclasses.replace(
                task,
                id=task_ids[portable.id],
                created_at=portable.created_at or now,
                completed_at=(portable.completed_at or now) if fields.completed else None,
                next_occurrence_id=task_ids[following] if following is not None else None,
            )
        )
    return task_ids, new_tasks
