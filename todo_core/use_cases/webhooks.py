"""Use cases on webhooks: a user's endpoints, and the delivery of what the outbox holds. The
commands stage in an entered unit of work and commit nothing (`todo_core.commands` runs them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from todo_core import webhooks
from todo_core.clock import Clock
from todo_core.commands import run
from todo_core.errors import FieldError, NotFound, TooManyWebhooks, ValidationFailed
from todo_core.ports import ReminderAnnouncer, UnitOfWork, WebhookDestinations, WebhookSender
from todo_core.webhooks import ClaimedDelivery, Delivery, DueReminder, Webhook

DELIVERIES_SHOWN = 50


async def checked_webhook(
    clock: Clock,
    destinations: WebhookDestinations,
    user_id: str,
    url: str,
    events: Sequence[str] | None,
    description: str | None,
) -> Webhook:
    """A new endpoint of the user's, with its secret (which only the answer that creates it
    shows), checked before any transaction: the check of its URL resolves a host name, which
    no unit of work waits for.

    :raises ValidationFailed: the URL may not receive events (see `WebhookDestinations`), or an
        event type is unknown.
    """
    if len(url) > webhooks.URL_MAX or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise ValidationFailed(FieldError("url", f"must be a URL of at most {webhooks.URL_MAX} characters"))
    if description is not None and (len(description) > webhooks.DESCRIPTION_MAX or "\x00" in description):
        raise ValidationFailed(
            FieldError("description", f"must be at most {webhooks.DESCRIPTION_MAX} characters, without NUL")
        )
    chosen = tuple(dict.fromkeys(events)) if events is not None else webhooks.EVENT_TYPES
    unknown = [kind for kind in chosen if kind not in webhooks.EVENT_TYPES]
    if unknown or not chosen:
        raise ValidationFailed(FieldError("events", f"must list one or more of {', '.join(webhooks.EVENT_TYPES)}"))
    refusal = await destinations.refusal(url)
    if refusal is not None:
        raise ValidationFailed(FieldError("url", refusal))
    return webhooks.new_webhook(user_id, url, chosen, description, clock.now())


async def create_webhook(uow: UnitOfWork, webhook: Webhook, *, at_most: int | None = None) -> Webhook:
    """Add the (checked) endpoint to its user's.

    :raises TooManyWebhooks: the user has `at_most` endpoints already (two made at the very same
        time may both pass: the cap bounds what one user holds, not to the unit).
    """
    if at_most is not None and len(await uow.webhooks.list_for_user(webhook.user_id)) >= at_most:
        raise TooManyWebhooks(at_most)
    await uow.webhooks.add(webhook)
    return webhook


async def list_webhooks(reader: UnitOfWork, user_id: str) -> Sequence[Webhook]:
    async with reader:
        return await reader.webhooks.list_for_user(user_id)


async def delete_webhook(uow: UnitOfWork, user_id: str, webhook_id: UUID) -> None:
    """Delete the endpoint and forget its deliveries (those not yet sent are not sent).

    :raises NotFound: the user has no such endpoint.
    """
    if not await uow.webhooks.remove(user_id, webhook_id):
        raise NotFound("webhook")


async def list_deliveries(reader: UnitOfWork, user_id: str, webhook_id: UUID) -> Sequence[Delivery]:
    """The endpoint's latest deliveries, newest first.

    :raises NotFound: the user has no such endpoint.
    """
    async with reader:
        if await reader.webhooks.get(user_id, webhook_id) is None:
            raise NotFound("webhook")
        return await reader.webhooks.deliveries(user_id, webhook_id, DELIVERIES_SHOWN)


@dataclass(frozen=True, slots=True)
class DeliveryRound:
    attempted: int
    delivered: int
    #: Reminders that fell due this round.
    reminded: int = 0


async def deliver_due(
    uow_factory: Callable[[], UnitOfWork],
    clock: Clock,
    sender: WebhookSender,
    announcer: ReminderAnnouncer,
    *,
    batch: int,
    lease: timedelta = webhooks.CLAIM_LEASE,
) -> DeliveryRound:
    """One round, in one short transaction: claim up to `batch` reminders that fell due and turn
    each into its `reminder.due` deliveries, then claim up to `batch` due deliveries (each
    leased until `now + lease`). After the commit, tell the event streams of the reminders, and
    attempt the deliveries all at once, recording each outcome (a short transaction each, one
    after the other) as soon as it is known.

    A reminder is claimed once: its deliveries and its stream event come from that one claim,
    whatever the number of processes. A process that dies between the claim and a record leaves
    that delivery to be tried again when its lease ends: at least once (a receiver that had
    answered 2xx before the death gets it twice, with the same `webhook-id`). `lease` must
    outlast an attempt, or a slow one is sent again meanwhile.

    :raises StorageUnavailable: the store cannot be reached.
    """
    reminders, claimed = await run(uow_factory(), _claim, clock, batch, lease)
    if reminders:
        await announcer.announce(reminders)
    delivered = 0
    attempts = [asyncio.ensure_future(_attempt(sender, item)) for item in claimed]
    try:
        for finished in asyncio.as_completed(attempts):
            item, outcome = await finished
            await run(uow_factory(), _record, clock, item, outcome)
            delivered += outcome.delivered
    finally:
        for attempt in attempts:
            attempt.cancel()
    return DeliveryRound(len(claimed), delivered, len(reminders))


async def next_due(reader: UnitOfWork) -> datetime | None:
    """When the next reminder or delivery of any user is due (it may have passed); None: none is.

    :raises StorageUnavailable: the store cannot be reached.
    """
    async with reader:
        return await reader.webhooks.next_due()


async def _claim(
    uow: UnitOfWork, clock: Clock, batch: int, lease: timedelta
) -> tuple[Sequence[DueReminder], Sequence[ClaimedDelivery]]:
    now = clock.now()
    reminders = await uow.webhooks.claim_due_reminders(now, batch)
    for reminder in reminders:
        await uow.webhooks.enqueue(
            reminder.user_id, webhooks.REMINDER_DUE, reminder.event_id, reminder.body, now, task_id=reminder.task_id
        )
    return reminders, await uow.webhooks.claim(now, now + lease, batch)


async def _attempt(sender: WebhookSender, item: ClaimedDelivery) -> tuple[ClaimedDelivery, webhooks.AttemptOutcome]:
    return item, await sender.send(item, int(time.time()))


async def _record(uow: UnitOfWork, clock: Clock, item: ClaimedDelivery, outcome: webhooks.AttemptOutcome) -> None:
    delivery, now = item.delivery, clock.now()
    attempts = delivery.attempts  # the claim counted this attempt
    retry = None if outcome.delivered else webhooks.next_attempt_after(attempts, now)
    await uow.webhooks.record_attempt(delivery, outcome, now=now, next_attempt_at=retry)
    webhook = await uow.webhooks.get(delivery.user_id, delivery.webhook_id)
    if webhook is not None:
        failing_since = None if outcome.delivered else (webhook.failing_since or now)
        disabled_at, reason = webhook.disabled_at, webhook.disabled_reason
        if failing_since is not None and now - failing_since >= webhooks.FAILING_DISABLES_AFTER:
            disabled_at = disabled_at or now
            reason = reason or "every delivery failed for 24 hours"
        if (failing_since, disabled_at) != (webhook.failing_since, webhook.disabled_at):
            await uow.webhooks.set_health(
                delivery.user_id,
                delivery.webhook_id,
                failing_since=failing_since,
                disabled_at=disabled_at,
                disabled_reason=reason,
            )
