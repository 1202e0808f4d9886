"""Delta sync: a client's copy of a user's data, brought up to date by what changed since.

Every commit that changes a user's data (a task or category created, changed or deleted)
takes the user's next *change sequence* number, and every row it writes, and the tombstone of
every row it deletes, carries that number. The user's changes are committed in the order of
their numbers (a commit holds the user's counter until it ends), so "everything after number
N" never misses a change that commits later under a smaller number: timestamps could not
promise that.

Within one number (one commit can change many rows), changes are ordered by kind, categories
first (a task's category arrives no later than the task), then by id: a `ChangePosition` can
stop a page anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from uuid import UUID

from todo_core.errors import SyncExpired, ValidationFailed

CHANGES_LIMIT_MAX = 1000
CHANGES_LIMIT_DEFAULT = 200


class ChangeKind(IntEnum):
    """What a change is, in the order changes of one sequence number are delivered."""

    CATEGORY = 0
    TASK = 1
    DELETION = 2
    #: Not a kind: a position after every change of its number.
    END = 3


@dataclass(frozen=True, slots=True, order=True)
class ChangePosition:
    """A point in a user's changes: after change `seq` of `kind` with `id`, or after all of
    `seq` (`kind` END). The start, before any change, is `ChangePosition(0)`."""

    seq: int
    kind: ChangeKind = ChangeKind.END
    id: UUID | None = None

    @property
    def complete(self) -> bool:
        """Whether every change up to and including `seq` is behind this position."""
        return self.kind is ChangeKind.END


START = ChangePosition(0)


@dataclass(frozen=True, slots=True)
class ChangeLog:
    """How far a user's change sequence goes: `seq`, the number of the latest commit, and
    `horizon`, the newest number whose tombstones have been purged (deletions up to it are
    forgotten, so a client that synced before it cannot learn of them)."""

    seq: int
    horizon: int


@dataclass(frozen=True, slots=True)
class ChangePage:
    """What changed after a position, up to `limit` changes: views of what was created or
    changed (as a query returns them), ids of what was deleted, and where the next page starts."""

    categories: Sequence[object]
    tasks: Sequence[object]
    deleted_categories: Sequence[UUID]
    deleted_tasks: Sequence[UUID]
    next: ChangePosition
    has_more: bool
    #: The user's change log, read with the changes.
    log: ChangeLog


#: One change read: (seq, kind, id, the view of the row, or the kind of the row deleted).
#: One change as read: (seq, kind, id, the view of the row, or the kind of the row deleted).
Change = tuple[int, ChangeKind, UUID, object]


def page_of(log: ChangeLog, changed: Sequence[Change], after: ChangePosition, limit: int) -> ChangePage:
    """The page of the first `limit` of the changes after `after`, read with `log` in one
    snapshot. `changed` may hold more (an adapter reads each kind's first `limit` + 1 apart):
    whatever was not read of a kind comes after all that was."""
    ordered = sorted(changed, key=lambda change: change[:3])
    has_more = len(ordered) > limit
    shown = ordered[:limit]
    page: dict[ChangeKind, list[Any]] = {kind: [] for kind in ChangeKind}
    deleted_categories: list[UUID] = []
    deleted_tasks: list[UUID] = []
    for _, kind, row_id, value in shown:
        if kind is ChangeKind.DELETION:
            (deleted_categories if value == ChangeKind.CATEGORY else deleted_tasks).append(row_id)
        else:
            page[kind].append(value)
    if has_more:
        seq, kind, row_id, _ = shown[-1]
        next_position = ChangePosition(seq, kind, row_id)
    else:
        next_position = ChangePosition(max(log.seq, after.seq))
    return ChangePage(
        categories=page[ChangeKind.CATEGORY],
        tasks=page[ChangeKind.TASK],
        deleted_categories=deleted_categories,
        deleted_tasks=deleted_tasks,
        next=next_position,
        has_more=has_more,
        log=log,
    )


def check_limit(limit: int) -> int:
    """:raises ValidationFailed: the limit is not 1 to CHANGES_LIMIT_MAX."""
    if not 1 <= limit <= CHANGES_LIMIT_MAX:
        raise ValidationFailed.single("limit", f"must be 1 to {CHANGES_LIMIT_MAX}")
    return limit


def check_position(after: ChangePosition, log: ChangeLog) -> None:
    """:raises SyncExpired: a client synced up to `after` can no longer be brought up to date:
    deletions it has not seen were purged, or the position is beyond anything this store has
    (the store was restored from a backup older than the client's copy)."""
    if after.seq < log.horizon:
        raise SyncExpired("changes this old are no longer kept; sync again from a snapshot (no `since`)")
    if after.seq > log.seq:
        raise SyncExpired("this position is ahead of the server's data; sync again from a snapshot (no `since`)")
