"""The purge of what every user keeps only for a while (`todo_core.ports.Retention`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, tuple_, update

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.tables import idempotency_keys, tombstones, user_changes

#: Before every row: where a purge starts when it does not know where the previous batch ended.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A batch of every user's expired tombstones, oldest first (a total order: the two statements
# below pick the same rows). First each of their users' horizon moves to the newest number of
# the batch (never back); then the batch is deleted, but only tombstones at or below their user's
# horizon: whatever happened between the two statements, no tombstone is forgotten while a
# client could still be owed it. Each statement touches at most `limit` rows.
def _expired_tombstones(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .where(
            tombstones.c.deleted_at >= bindparam("deleted_from"), tombstones.c.deleted_at < bindparam("deleted_before")
        )
        .order_by(tombstones.c.deleted_at, tombstones.c.user_id, tombstones.c.id)
        .limit(bindparam("limit"))
    )


_BATCH = _expired_tombstones(tombstones.c.user_id, tombstones.c.change_seq).subquery()
_BATCH_NEWEST = (
    select(_BATCH.c.user_id, func.max(_BATCH.c.change_seq).label("seq")).group_by(_BATCH.c.user_id).subquery()
)
_MOVE_HORIZONS = (
    update(user_changes)
    .where(user_changes.c.user_id == _BATCH_NEWEST.c.user_id, user_changes.c.horizon < _BATCH_NEWEST.c.seq)
    .values(horizon=_BATCH_NEWEST.c.seq)
)
_PURGE_TOMBSTONES = (
    delete(tombstones)
    .where(
        tuple_(tombstones.c.user_id, tombstones.c.id).in_(_expired_tombstones(tombstones.c.user_id, tombstones.c.id)),
        tombstones.c.change_seq
        <= select(user_changes.c.horizon).where(user_changes.c.user_id == tombstones.c.user_id).scalar_subquery(),
    )
    .returning(tombstones.c.deleted_at)
)
_PURGE_KEYS = (
    delete(idempotency_keys)
    .where(
        tuple_(idempotency_keys.c.user_id, idempotency_keys.c.key).in_(
            select(idempotency_keys.c.user_id, idempotency_keys.c.key)
            .where(
                idempotency_keys.c.recorded_at >= bindparam("recorded_from"),
                idempotency_keys.c.recorded_at < bindparam("recorded_before"),
            )
            .order_by(idempotency_keys.c.recorded_at)
            .limit(bindparam("limit"))
        )
    )
    .returning(idempotency_keys.c.recorded_at)
)


class SqlRetentionRepository:
    """What every user keeps only for a while (see `Retention`)."""

    def __init__(self, executor: Executor) -> None:
        self._sql = executor

    async def purge_tombstones(
        self, *, deleted_before: datetime, limit: int, deleted_from: datetime = EPOCH
    ) -> tuple[int, datetime | None]:
        """Forget a batch (see `Retention.purge_tombstones`) of those deleted from
        `deleted_from` on; return how many, and when the newest of them was deleted."""
        values = {"deleted_from": deleted_from, "deleted_before": deleted_before, "limit": limit}
        await self._sql.run(_MOVE_HORIZONS, values)
        purged = await self._sql.rows(_PURGE_TOMBSTONES, values)
        return len(purged), max((row[0] for row in purged), default=None)

    async def purge_keys(
        self, *, recorded_before: datetime, limit: int, recorded_from: datetime = EPOCH
    ) -> tuple[int, datetime | None]:
        """Forget a batch (see `Retention.purge_keys`) of those recorded from `recorded_from`
        on; return how many, and when the newest of them was recorded."""
        values = {"recorded_from": recorded_from, "recorded_before": recorded_before, "limit": limit}
        purged = await self._sql.rows(_PURGE_KEYS, values)
        return len(purged), max((row[0] for row in purged), default=None)
