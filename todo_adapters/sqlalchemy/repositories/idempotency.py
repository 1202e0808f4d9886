"""Idempotency keys on SQLAlchemy Core (`todo_core.ports.IdempotencyKeys`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, bindparam, select, text, update

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_adapters.sqlalchemy.tables import UTCDateTime, idempotency_keys
from todo_core.idempotency import Answer, Recorded

_USER: BindParameter[str] = bindparam("user_id")


# A key is claimed anew once it has expired; a claim holds the key's row until its
# transaction ends, so a second claim of the same key waits and then sees what the first recorded.
_CLAIM_KEY = text(
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, recorded_at) "
    "VALUES (:user_id, :key, :fingerprint, :now) "
    "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "recorded_at = excluded.recorded_at, status = NULL, headers = NULL, body = NULL "
    "WHERE idempotency_keys.recorded_at < :expired_before"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("expired_before", type_=UTCDateTime()))
_KEY = select(
    idempotency_keys.c.fingerprint, idempotency_keys.c.status, idempotency_keys.c.headers, idempotency_keys.c.body
).where(idempotency_keys.c.user_id == _USER, idempotency_keys.c.key == bindparam("key"))
_RECORD_KEY = update(idempotency_keys).where(
    idempotency_keys.c.user_id == bindparam("b_user_id"), idempotency_keys.c.key == bindparam("b_key")
)


class SqlIdempotencyKeys:
    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def claim(
        self, user_id: str, key: str, fingerprint: str, *, now: datetime, expired_before: datetime
    ) -> Recorded | None:
        await self._changes.take(user_id)
        values = {"user_id": user_id, "key": key, "fingerprint": fingerprint, "now": now}
        await self._sql.run(_CLAIM_KEY, {**values, "expired_before": expired_before})
        ((stored_fingerprint, status, headers, body),) = await self._sql.rows(_KEY, {"user_id": user_id, "key": key})
        if status is None:  # what this claim wrote: a recorded key always has its answer
            return None
        answer = Answer(status, tuple((name, value) for name, value in headers), bytes(body))
        return Recorded(stored_fingerprint, answer)

    async def record(self, user_id: str, key: str, answer: Answer) -> None:
        # The columns are named as the REST API's answers, the first that were recorded.
        values = {"status": answer.code, "headers": [list(pair) for pair in answer.labels], "body": answer.body}
        await self._sql.run(_RECORD_KEY, {"b_user_id": user_id, "b_key": key, **values})
