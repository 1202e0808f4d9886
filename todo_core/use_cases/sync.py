"""Use cases of sync: what changed since a client last synced, and forgetting what is kept
only for a while."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from todo_core.clock import Clock
from todo_core.errors import ValidationFailed
from todo_core.ports import ChangeFeed, Retention
from todo_core.sync import START, ChangePage, ChangePosition, check_limit, check_position
from todo_core.webhooks import FINISHED_DELIVERIES_KEPT


async def changes_since(feed: ChangeFeed, user_id: str, since: ChangePosition | None, limit: int) -> ChangePage:
    """The user's changes after `since`; without it, a snapshot of everything the user has
    (paged the same way: the next page continues after the last change of this one).

    :raises ValidationFailed: the limit is out of range.
    :raises SyncExpired: `since` is too old (or too new) to bring a client up to date from.
    """
    check_limit(limit)
    page = await feed.changes(user_id, since or START, limit, deletions=since is not None)
    if since is not None:
        check_position(since, page.log)
    return page


#: How many rows one purge statement forgets at most, by default: a short transaction.
PURGE_BATCH_ROWS = 2000


@dataclass(frozen=True, slots=True)
class Purged:
    """What one purge forgot, and in how many transactions."""

    tombstones: int
    keys: int
    batches: int
    #: Webhook deliveries delivered or given up.
    deliveries: int = 0


async def purge_expired(
    retention: Retention,
    clock: Clock,
    *,
    tombstones: timedelta,
    keys: timedelta,
    deliveries: timedelta = FINISHED_DELIVERIES_KEPT,
    batch: int = PURGE_BATCH_ROWS,
) -> Purged | None:
    """Forget tombstones older than `tombstones`, idempotency keys older than `keys` and webhook
    deliveries that finished (delivered or given up) more than `deliveries` ago, at most `batch`
    rows per transaction, until none is left; None if another process is purging (this one
    skips: the other drains the same rows).

    :raises ValidationFailed: `batch` is below 1.
    :raises StorageUnavailable: the store cannot be reached (what was purged until then stays so).
    """
    if batch < 1:
        raise ValidationFailed.single("batch", "must be at least 1")
    now = clock.now()
    async with retention.exclusively() as alone:
        if not alone:
            return None
        buried, batches = await _drain(
            lambda: retention.purge_tombstones(deleted_before=now - tombstones, limit=batch), batch
        )
        forgotten, more = await _drain(lambda: retention.purge_keys(recorded_before=now - keys, limit=batch), batch)
        sent, last = await _drain(
            lambda: retention.purge_deliveries(finished_before=now - deliveries, limit=batch), batch
        )
    return Purged(buried, forgotten, batches + more + last, sent)


async def _drain(purge_batch: Callable[[], Awaitable[int]], limit: int) -> tuple[int, int]:
    """Run `purge_batch` until one forgets fewer than `limit` rows; return the rows forgotten
    and the batches run. It ends: the cut-off is fixed, and rows written from now on are newer."""
    total = batches = 0
    while True:
        purged = await purge_batch()
        total, batches = total + purged, batches + 1
        if purged < limit:
            return total, batches
