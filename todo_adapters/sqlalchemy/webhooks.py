"""Webhook endpoints and the outbox of their deliveries, in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    Integer,
    String,
    Uuid,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
    update,
)

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.tables import UTCDateTime, reminders, webhook_deliveries, webhooks
from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, Delivery, DeliveryState, DueReminder, Webhook

_USER: BindParameter[str] = bindparam("user_id")
_WEBHOOK: BindParameter[UUID] = bindparam("webhook_id")
_W = webhooks.c
_D = webhook_deliveries.c
_WEBHOOK_COLUMNS = (
    _W.user_id, _W.id, _W.url, _W.events, _W.description, _W.secret, _W.created_at,
    _W.failing_since, _W.disabled_at, _W.disabled_reason,
)  # fmt: skip
_DELIVERY_COLUMNS = (
    _D.user_id, _D.webhook_id, _D.event_id, _D.event_type, _D.body, _D.created_at, _D.state, _D.attempts,
    _D.next_attempt_at, _D.last_attempt_at, _D.last_status, _D.last_error, _D.task_id,
)  # fmt: skip

_INSERT_WEBHOOK = insert(webhooks)
_WEBHOOKS = select(*_WEBHOOK_COLUMNS).where(_W.user_id == _USER).order_by(_W.created_at, _W.id)
_WEBHOOK_BY_ID = select(*_WEBHOOK_COLUMNS).where(_W.user_id == _USER, _W.id == _WEBHOOK)
_DELETE_WEBHOOK = delete(webhooks).where(_W.user_id == _USER, _W.id == _WEBHOOK)
_DELETE_ITS_DELIVERIES = delete(webhook_deliveries).where(_D.user_id == _USER, _D.webhook_id == _WEBHOOK)
_SET_HEALTH = (
    update(webhooks)
    .where(_W.user_id == bindparam("b_user_id"), _W.id == bindparam("b_webhook_id"))
    .values(
        failing_since=bindparam("b_failing_since", type_=UTCDateTime),
        disabled_at=bindparam("b_disabled_at", type_=UTCDateTime),
        disabled_reason=bindparam("b_disabled_reason"),
    )
)
#: One statement, whether the user has endpoints or not: a row per enabled endpoint that wants
#: the event's type (`events` is a comma-separated list).
_ENQUEUE = insert(webhook_deliveries).from_select(
    [
        "user_id",
        "webhook_id",
        "event_id",
        "event_type",
        "body",
        "created_at",
        "state",
        "attempts",
        "next_attempt_at",
        "task_id",
    ],
    select(
        cast(bindparam("b_user_id"), String),
        _W.id,
        cast(bindparam("b_event_id", type_=Uuid), Uuid),
        cast(bindparam("b_event_type"), String),
        cast(bindparam("b_body"), String),
        # No CAST: SQLite would read the instant's text as a number.
        bindparam("b_now", type_=UTCDateTime),
        literal_column(f"'{DeliveryState.PENDING}'"),
        literal_column("0"),
        bindparam("b_due", type_=UTCDateTime),
        cast(bindparam("b_task_id", type_=Uuid), Uuid),  # typed, or PostgreSQL takes a NULL for text
    ).where(
        _W.user_id == bindparam("b_user_id"),
        _W.disabled_at.is_(None),
        (literal_column("','") + _W.events + literal_column("','")).like(bindparam("pattern")),
    ),
)
_R = reminders.c
_SCHEDULE_REMINDER = insert(reminders)
_CANCEL_REMINDERS = delete(reminders).where(_R.user_id == _USER, _R.task_id == bindparam("task_id", type_=Uuid))
#: The delivery loop's claim of the reminders that fell due, across users (a maintenance
#: statement, never sent for a request): taken out of the table in the claiming transaction, so
#: that each is claimed once. PostgreSQL skips the rows another process claims meanwhile.
CLAIM_REMINDERS = (
    delete(reminders)
    .where(
        tuple_(_R.user_id, _R.event_id).in_(
            select(_R.user_id, _R.event_id)
            .where(_R.due_at <= bindparam("now", type_=UTCDateTime))
            .order_by(_R.due_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
    )
    .returning(_R.user_id, _R.task_id, _R.event_id, _R.due_at, _R.body)
)
_SOONEST = union_all(
    select(func.min(_R.due_at).label("due")),
    select(func.min(_D.next_attempt_at))
    .join(webhooks, (_W.user_id == _D.user_id) & (_W.id == _D.webhook_id))
    .where(_D.state == DeliveryState.PENDING, _W.disabled_at.is_(None)),
).subquery()
#: When the delivery loop has something to do next, across users (its wait between rounds):
#: what the claims above would take, soonest first.
NEXT_DUE = select(func.min(_SOONEST.c.due))
#: The purge of finished deliveries, across users (the batched maintenance): a batch of one
#: state's, finished before a time (a finished delivery's `next_attempt_at` is when it finished),
#: oldest first; never a pending one.
PURGE_FINISHED = (
    delete(webhook_deliveries)
    .where(
        tuple_(_D.user_id, _D.webhook_id, _D.event_id).in_(
            select(_D.user_id, _D.webhook_id, _D.event_id)
            .where(
                _D.state == bindparam("state"),
                _D.next_attempt_at >= bindparam("finished_from", type_=UTCDateTime),
                _D.next_attempt_at < bindparam("finished_before", type_=UTCDateTime),
            )
            .order_by(_D.next_attempt_at)
            .limit(bindparam("limit"))
        )
    )
    .returning(_D.next_attempt_at)
)
#: The channel that wakes the delivery loops of every process (PostgreSQL's `LISTEN`).
OUTBOX_CHANNEL = "todo_outbox"
#: Sent after the COMMIT of a change that wrote to the outbox, as `_ANNOUNCE` is (and for the same
#: reason, outside the transaction): only when there is something to wake for, a reminder or an
#: enabled endpoint of the user's (the event's deliveries), so that a user without endpoints costs
#: no notification.
RING = text(
    f"SELECT pg_notify('{OUTBOX_CHANNEL}', '') WHERE :reminder OR EXISTS "
    "(SELECT 1 FROM webhooks WHERE webhooks.user_id = :user_id AND webhooks.disabled_at IS NULL)"
)
_HAS_ENABLED_ENDPOINT = select(exists().where(_W.user_id == _USER, _W.disabled_at.is_(None)))
_DELIVERIES = (
    select(*_DELIVERY_COLUMNS)
    .where(_D.user_id == _USER, _D.webhook_id == _WEBHOOK)
    .order_by(_D.created_at.desc(), _D.event_id.desc())
    .limit(bindparam("limit"))
)
#: The delivery loop's claim, across users (a maintenance statement, never sent for a request):
#: PostgreSQL skips the rows another process claims meanwhile; SQLite writes one at a time.
CLAIM = (
    select(*_DELIVERY_COLUMNS, _W.url, _W.secret)
    .join(webhooks, (_W.user_id == _D.user_id) & (_W.id == _D.webhook_id))
    .where(
        _D.state == DeliveryState.PENDING,
        _D.next_attempt_at <= bindparam("now", type_=UTCDateTime),
        _W.disabled_at.is_(None),
    )
    .order_by(_D.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(of=webhook_deliveries, skip_locked=True)
)
_KEY = (
    _D.user_id == bindparam("b_user_id"),
    _D.webhook_id == bindparam("b_webhook_id"),
    _D.event_id == bindparam("b_event_id", type_=Uuid),
)
_LEASE = (
    update(webhook_deliveries)
    .where(*_KEY)
    .values(attempts=_D.attempts + 1, next_attempt_at=bindparam("b_lease_until", type_=UTCDateTime))
)
_RECORD = (
    update(webhook_deliveries)
    .where(*_KEY)
    .values(
        state=bindparam("b_state"),
        next_attempt_at=bindparam("b_next_attempt_at", type_=UTCDateTime),
        last_attempt_at=bindparam("b_now", type_=UTCDateTime),
        last_status=bindparam("b_status", type_=Integer),
        last_error=bindparam("b_error", type_=String),
    )
)


def _webhook(row: Sequence[Any]) -> Webhook:
    user_id, id_, url, events, description, secret, created_at, failing_since, disabled_at, reason = row
    return Webhook(
        user_id, id_, url, tuple(events.split(",")), description, secret, created_at, failing_since, disabled_at, reason
    )


class SqlWebhookRepository:
    def __init__(self, executor: Executor) -> None:
        self._sql = executor
        #: The users whose events this unit of work wrote, each with whether one was a reminder:
        #: whom its commit wakes the delivery loops for (see `RING`, `wakes_deliverer`).
        self.written: dict[str, bool] = {}

    async def wakes_deliverer(self) -> bool:
        """Whether what this unit of work wrote gives the delivery loop something to do (read
        before the commit, on SQLite, where the loop is woken in the process)."""
        if any(self.written.values()):
            return True
        for user_id in self.written:
            if (await self._sql.rows(_HAS_ENABLED_ENDPOINT, {"user_id": user_id}))[0][0]:
                return True
        return False

    async def ring(self) -> None:
        """Wake every process's delivery loop for what this unit of work wrote (PostgreSQL,
        right after the COMMIT)."""
        for user_id, reminder in self.written.items():
            await self._sql.run(RING, {"user_id": user_id, "reminder": reminder})

    async def add(self, webhook: Webhook) -> None:
        values = {
            "user_id": webhook.user_id,
            "id": webhook.id,
            "url": webhook.url,
            "events": ",".join(webhook.events),
            "description": webhook.description,
            "secret": webhook.secret,
            "created_at": webhook.created_at,
            "failing_since": None,
            "disabled_at": None,
            "disabled_reason": None,
        }
        await self._sql.run(_INSERT_WEBHOOK, values)

    async def list_for_user(self, user_id: str) -> Sequence[Webhook]:
        return [_webhook(row) for row in await self._sql.rows(_WEBHOOKS, {"user_id": user_id})]

    async def get(self, user_id: str, webhook_id: UUID) -> Webhook | None:
        rows = await self._sql.rows(_WEBHOOK_BY_ID, {"user_id": user_id, "webhook_id": webhook_id})
        return _webhook(rows[0]) if rows else None

    async def remove(self, user_id: str, webhook_id: UUID) -> bool:
        key = {"user_id": user_id, "webhook_id": webhook_id}
        await self._sql.run(_DELETE_ITS_DELIVERIES, key)
        return await self._sql.count(_DELETE_WEBHOOK, key) == 1

    async def set_health(
        self,
        user_id: str,
        webhook_id: UUID,
        *,
        failing_since: datetime | None,
        disabled_at: datetime | None,
        disabled_reason: str | None,
    ) -> None:
        values = {
            "b_user_id": user_id,
            "b_webhook_id": webhook_id,
            "b_failing_since": failing_since,
            "b_disabled_at": disabled_at,
            "b_disabled_reason": disabled_reason,
        }
        await self._sql.run(_SET_HEALTH, values)

    async def enqueue(
        self,
        user_id: str,
        event_type: str,
        event_id: UUID,
        body: str,
        now: datetime,
        *,
        due_at: datetime | None = None,
        task_id: UUID | None = None,
    ) -> None:
        values = {
            "b_due": due_at or now,
            "b_task_id": task_id,
            "b_user_id": user_id,
            "b_event_id": event_id,
            "b_event_type": event_type,
            "b_body": body,
            "b_now": now,
            "pattern": f"%,{event_type},%",
        }
        await self._sql.run(_ENQUEUE, values)
        self.written.setdefault(user_id, False)

    async def schedule_reminder(
        self, user_id: str, task_id: UUID, event_id: UUID, body: str, *, due_at: datetime, now: datetime
    ) -> None:
        values = {
            "user_id": user_id,
            "event_id": event_id,
            "task_id": task_id,
            "due_at": due_at,
            "body": body,
            "created_at": now,
        }
        await self._sql.run(_SCHEDULE_REMINDER, values)
        self.written[user_id] = True

    async def cancel_reminders(self, user_id: str, task_id: UUID) -> None:
        await self._sql.run(_CANCEL_REMINDERS, {"user_id": user_id, "task_id": task_id})

    async def claim_due_reminders(self, now: datetime, limit: int) -> Sequence[DueReminder]:
        return [DueReminder(*row) for row in await self._sql.rows(CLAIM_REMINDERS, {"now": now, "limit": limit})]

    async def next_due(self) -> datetime | None:
        due: datetime | None = (await self._sql.rows(NEXT_DUE, {}))[0][0]
        return due

    async def purge_finished(
        self, *, state: str, finished_before: datetime, limit: int, finished_from: datetime
    ) -> tuple[int, datetime | None]:
        """Forget a batch of the deliveries in `state` (delivered or failed) that finished from
        `finished_from` until `finished_before`; return how many, and when the newest finished."""
        values = {"state": state, "finished_from": finished_from, "finished_before": finished_before, "limit": limit}
        purged = await self._sql.rows(PURGE_FINISHED, values)
        return len(purged), max((row[0] for row in purged), default=None)

    async def deliveries(self, user_id: str, webhook_id: UUID, limit: int) -> Sequence[Delivery]:
        rows = await self._sql.rows(_DELIVERIES, {"user_id": user_id, "webhook_id": webhook_id, "limit": limit})
        return [Delivery(*row) for row in rows]

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[ClaimedDelivery]:
        claimed = []
        for row in await self._sql.rows(CLAIM, {"now": now, "limit": limit}):
            delivery = Delivery(*row[:-2])
            key = {"b_user_id": delivery.user_id, "b_webhook_id": delivery.webhook_id, "b_event_id": delivery.event_id}
            await self._sql.run(_LEASE, {**key, "b_lease_until": lease_until})
            leased = dataclasses.replace(delivery, attempts=delivery.attempts + 1, next_attempt_at=lease_until)
            claimed.append(ClaimedDelivery(leased, row[-2], row[-1]))
        return claimed

    async def record_attempt(
        self, delivery: Delivery, outcome: AttemptOutcome, *, now: datetime, next_attempt_at: datetime | None
    ) -> None:
        if outcome.delivered:
            state, due = DeliveryState.DELIVERED, now
        elif next_attempt_at is None:
            state, due = DeliveryState.FAILED, now
        else:
            state, due = DeliveryState.PENDING, next_attempt_at
        values = {
            "b_user_id": delivery.user_id,
            "b_webhook_id": delivery.webhook_id,
            "b_event_id": delivery.event_id,
            "b_state": state,
            "b_next_attempt_at": due,
            "b_now": now,
            "b_status": outcome.status,
            "b_error": outcome.error,
        }
        await self._sql.run(_RECORD, values)
