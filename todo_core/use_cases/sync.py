"""Use cases of sync: what changed since a client last synced, and forgetting what is kept
only for a while."""

from __future__ import annotations

from datetime import timedelta

from todo_core.clock import Clock
from todo_core.ports import ChangeFeed, Retention
from todo_core.sync import START, ChangePage, ChangePosition, check_limit, check_position


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


async def purge_expired(
    retention: Retention, clock: Clock, *, tombstones: timedelta, keys: timedelta
) -> tuple[int, int]:
    """Forget tombstones older than `tombstones` and idempotency keys older than `keys`."""
    now = clock.now()
    return await retention.purge(deleted_before=now - tombstones, recorded_before=now - keys)
