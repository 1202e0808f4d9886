"""Webhook endpoints and the outbox in memory, for the in-memory unit of work: what a unit of
work writes is kept aside and applied at its commit, as its other tables are."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, Delivery, DeliveryState, DueReminder, Webhook

DeliveryKey = tuple[str, UUID, UUID]  # (user_id, webhook_id, event_id)
ReminderKey = tuple[str, UUID]  # (user_id, event_id)


@dataclasses.dataclass
class WebhookTables:
    """What is committed."""

    webhooks: dict[tuple[str, UUID], Webhook] = dataclasses.field(default_factory=dict)
    deliveries: dict[DeliveryKey, Delivery] = dataclasses.field(default_factory=dict)
    reminders: dict[ReminderKey, DueReminder] = dataclasses.field(default_factory=dict)

    def purge_finished(self, finished_before: datetime, limit: int) -> int:
        """Forget at most `limit` deliveries delivered or given up before `finished_before`."""
        finished = sorted(
            (delivery.next_attempt_at, key)
            for key, delivery in self.deliveries.items()
            if delivery.state != DeliveryState.PENDING and delivery.next_attempt_at < finished_before
        )
        for _, key in finished[:limit]:
            del self.deliveries[key]
        return min(limit, len(finished))


class InMemoryWebhookRepository:
    def __init__(self, tables: WebhookTables) -> None:
        self._tables = tables
        self._webhooks: dict[tuple[str, UUID], Webhook | None] = {}
        self._deliveries: dict[DeliveryKey, Delivery | None] = {}
        self._reminders: dict[ReminderKey, DueReminder | None] = {}

    def _webhook_rows(self) -> dict[tuple[str, UUID], Webhook]:
        rows: dict[tuple[str, UUID], Webhook | None] = {**self._tables.webhooks, **self._webhooks}
        return {key: row for key, row in rows.items() if row is not None}

    def _delivery_rows(self) -> dict[DeliveryKey, Delivery]:
        rows: dict[DeliveryKey, Delivery | None] = {**self._tables.deliveries, **self._deliveries}
        return {key: row for key, row in rows.items() if row is not None}

    def _reminder_rows(self) -> dict[ReminderKey, DueReminder]:
        rows: dict[ReminderKey, DueReminder | None] = {**self._tables.reminders, **self._reminders}
        return {key: row for key, row in rows.items() if row is not None}

    def apply(self) -> None:
        for rkey, reminder in self._reminders.items():
            if reminder is None:
                self._tables.reminders.pop(rkey, None)
            else:
                self._tables.reminders[rkey] = reminder
        self._reminders = {}
        for key, webhook in self._webhooks.items():
            if webhook is None:
                self._tables.webhooks.pop(key, None)
            else:
                self._tables.webhooks[key] = webhook
        for dkey, delivery in self._deliveries.items():
            if delivery is None:
                self._tables.deliveries.pop(dkey, None)
            else:
                self._tables.deliveries[dkey] = delivery
        self._webhooks, self._deliveries = {}, {}

    def erase(self, user_id: str) -> None:
        for key in [key for key in self._tables.webhooks if key[0] == user_id]:
            del self._tables.webhooks[key]
        for dkey in [dkey for dkey in self._tables.deliveries if dkey[0] == user_id]:
            del self._tables.deliveries[dkey]
        for rkey in [rkey for rkey in self._tables.reminders if rkey[0] == user_id]:
            del self._tables.reminders[rkey]

    async def add(self, webhook: Webhook) -> None:
        self._webhooks[(webhook.user_id, webhook.id)] = webhook

    async def list_for_user(self, user_id: str) -> Sequence[Webhook]:
        owned = [webhook for (owner, _), webhook in self._webhook_rows().items() if owner == user_id]
        return sorted(owned, key=lambda webhook: (webhook.created_at, webhook.id))

    async def get(self, user_id: str, webhook_id: UUID) -> Webhook | None:
        return self._webhook_rows().get((user_id, webhook_id))

    async def remove(self, user_id: str, webhook_id: UUID) -> bool:
        if (user_id, webhook_id) not in self._webhook_rows():
            return False
        self._webhooks[(user_id, webhook_id)] = None
        for key in self._delivery_rows():
            if key[:2] == (user_id, webhook_id):
                self._deliveries[key] = None
        return True

    async def set_health(
        self,
        user_id: str,
        webhook_id: UUID,
        *,
        failing_since: datetime | None,
        disabled_at: datetime | None,
        disabled_reason: str | None,
    ) -> None:
        webhook = self._webhook_rows().get((user_id, webhook_id))
        if webhook is not None:
            self._webhooks[(user_id, webhook_id)] = dataclasses.replace(
                webhook, failing_since=failing_since, disabled_at=disabled_at, disabled_reason=disabled_reason
            )

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
        for webhook in await self.list_for_user(user_id):
            if webhook.disabled_at is None and event_type in webhook.events:
                delivery = Delivery(
                    user_id, webhook.id, event_id, event_type, body, now, DeliveryState.PENDING, 0, due_at or now,
                    task_id=task_id,
                )  # fmt: skip
                self._deliveries[(user_id, webhook.id, event_id)] = delivery

    async def schedule_reminder(
        self, user_id: str, task_id: UUID, event_id: UUID, body: str, *, due_at: datetime, now: datetime
    ) -> None:
        self._reminders[(user_id, event_id)] = DueReminder(user_id, task_id, event_id, due_at, body)

    async def cancel_reminders(self, user_id: str, task_id: UUID) -> None:
        for key, reminder in self._reminder_rows().items():
            if key[0] == user_id and reminder.task_id == task_id:
                self._reminders[key] = None

    async def claim_due_reminders(self, now: datetime, limit: int) -> Sequence[DueReminder]:
        due = sorted((r for r in self._reminder_rows().values() if r.due_at <= now), key=lambda r: r.due_at)[:limit]
        for reminder in due:
            self._reminders[(reminder.user_id, reminder.event_id)] = None
        return due

    async def next_due(self) -> datetime | None:
        webhooks = self._webhook_rows()
        pending = [
            d.next_attempt_at
            for d in self._delivery_rows().values()
            if d.state == DeliveryState.PENDING
            and (webhook := webhooks.get((d.user_id, d.webhook_id))) is not None
            and webhook.disabled_at is None
        ]
        return min([*pending, *(r.due_at for r in self._reminder_rows().values())], default=None)

    async def deliveries(self, user_id: str, webhook_id: UUID, limit: int) -> Sequence[Delivery]:
        found = [d for key, d in self._delivery_rows().items() if key[:2] == (user_id, webhook_id)]
        return sorted(found, key=lambda d: (d.created_at, d.event_id), reverse=True)[:limit]

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[ClaimedDelivery]:
        webhooks = self._webhook_rows()
        due = sorted(
            (
                d
                for d in self._delivery_rows().values()
                if d.state == DeliveryState.PENDING
                and d.next_attempt_at <= now
                and (webhook := webhooks.get((d.user_id, d.webhook_id))) is not None
                and webhook.disabled_at is None
            ),
            key=lambda d: d.next_attempt_at,
        )[:limit]
        claimed = []
        for delivery in due:
            leased = dataclasses.replace(delivery, attempts=delivery.attempts + 1, next_attempt_at=lease_until)
            self._deliveries[(delivery.user_id, delivery.webhook_id, delivery.event_id)] = leased
            webhook = webhooks[(delivery.user_id, delivery.webhook_id)]
            claimed.append(ClaimedDelivery(leased, webhook.url, webhook.secret))
        return claimed

    async def record_attempt(
        self, delivery: Delivery, outcome: AttemptOutcome, *, now: datetime, next_attempt_at: datetime | None
    ) -> None:
        key = (delivery.user_id, delivery.webhook_id, delivery.event_id)
        current = self._delivery_rows().get(key)
        if current is None:
            return
        if outcome.delivered:
            state, due = DeliveryState.DELIVERED, now
        elif next_attempt_at is None:
            state, due = DeliveryState.FAILED, now
        else:
            state, due = DeliveryState.PENDING, next_attempt_at
        self._deliveries[key] = dataclasses.replace(
            current,
            state=state,
            next_attempt_at=due,
            last_attempt_at=now,
            last_status=outcome.status,
            last_error=outcome.error,
        )
