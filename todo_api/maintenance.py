"""Purges of what is kept only for a while (tombstones, idempotency keys, finished webhook
deliveries), off the request path:
in batches of at most TODO_PURGE_BATCH_ROWS rows, each a short transaction of its own, by one
process at a time across every worker and replica (the others skip their round). `todo serve`
runs them every TODO_PURGE_INTERVAL_SECONDS unless TODO_MAINTAIN_IN_SERVER=false; `todo maintain`
runs them once, or every `--every` seconds, for operators who schedule them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from todo_adapters.sqlalchemy.import_slices import sweep_abandoned_imports
from todo_api.container import Container
from todo_api.settings import Settings
from todo_core.errors import SchemaMissing, StorageUnavailable
from todo_core.use_cases.sync import Purged, purge_expired
from todo_core.use_cases.webhooks import DeliveryRound, deliver_due, next_due

logger = logging.getLogger(__name__)


async def purge_once(container: Container, settings: Settings) -> Purged | None:
    """One purge, drained to the end; None if another process was purging.

    :raises StorageUnavailable: the database cannot be reached (what was purged stays so).
    """
    await sweep_imports(container)
    return await purge_expired(
        container.retention(),
        container.clock(),
        tombstones=timedelta(days=settings.tombstone_days),
        keys=timedelta(hours=settings.idempotency_key_hours),
        deliveries=timedelta(hours=settings.webhook_history_hours),
        batch=settings.purge_batch_rows,
    )


async def sweep_imports(container: Container) -> None:
    """SQLite: delete what imports interrupted by a crash wrote ahead (see
    `todo_adapters.sqlalchemy.import_slices`); at startup and in every maintenance round.

    :raises StorageUnavailable: the database cannot be reached.
    """
    if container.backend() == "sqlite":
        await sweep_abandoned_imports(container.engine())


async def sweep_imports_logged(container: Container) -> None:
    try:
        await sweep_imports(container)
    except SchemaMissing:
        pass  # no import ever ran: the schema gate tells the operator to run `todo migrate`
    except StorageUnavailable as error:  # the next maintenance round tries again
        logger.warning("deleting what interrupted imports wrote failed: %s; the next round tries again", error)
    except Exception:
        logger.exception("deleting what interrupted imports wrote failed")


def described(purged: Purged | None) -> str:
    if purged is None:
        return "another process is purging: skipped"
    return (
        f"purged {purged.tombstones} tombstones, {purged.keys} idempotency keys and {purged.deliveries} "
        f"finished webhook deliveries in {purged.batches} transactions"
    )


async def purge_periodically(container: Container, settings: Settings, *, interval: float, first_wait: float) -> None:
    """Purge every `interval` seconds after `first_wait`, until cancelled; a failure is logged
    and the next round tries again."""
    await asyncio.sleep(first_wait)
    while True:
        try:
            purged = await purge_once(container, settings)
            logger.log(logging.INFO if purged is not None else logging.DEBUG, "%s", described(purged))
        except Exception:  # the database may be down: try again next time
            logger.exception("purging expired tombstones, idempotency keys and deliveries failed")
        await asyncio.sleep(interval)


#: The most deliveries (and reminders) one round claims.
DELIVERY_BATCH = 20
#: The shortest wait between rounds when the outbox says something is due that the last round
#: could not claim (another process holds it, or is leasing it): no busy loop.
SHORTEST_WAIT = 0.2


async def deliver_once(container: Container) -> DeliveryRound:
    """Claim the reminders that fell due and the due webhook deliveries (a batch of each at
    most), attempt them, record how each went.

    :raises StorageUnavailable: the database cannot be reached.
    """
    settings: Settings = container.settings()
    return await deliver_due(
        container.unit_of_work,
        container.clock(),
        container.webhook_sender(),
        container.reminder_announcer(),
        batch=DELIVERY_BATCH,
        lease=timedelta(seconds=settings.webhooks_lease_seconds),
    )


async def deliver_periodically(container: Container, settings: Settings) -> None:
    """Deliver webhooks and reminders until cancelled.

    It does not poll the claim: between rounds it asks when something is next due (one read of
    the outbox, `next_due`) and sleeps until then, unless a commit that wrote to the outbox wakes
    it first (the broker's doorbell: rung in the process on SQLite, by a notification heard on
    PostgreSQL). It looks again after TODO_WEBHOOKS_POLL_SECONDS at the latest, in case a wake-up
    was lost. So a server with nothing due sends one read per poll and no claim; a reminder is
    claimed at its time; an event is claimed as soon as its commit wakes the loop.

    A failure is logged (once while it lasts: a database that is down for a minute is one
    message, not sixty) and the next round tries again."""
    broker = container.broker()
    clock = container.clock()
    failing = False
    while True:
        wait = settings.webhooks_poll_seconds
        try:
            due = await next_due(container.reader())
            now = clock.now()
            worked = None
            if due is not None and due <= now:
                worked = await deliver_once(container)
            if failing:
                logger.info("delivering webhooks works again")
            failing = False
            if worked is not None and not (worked.attempted or worked.reminded):
                wait = SHORTEST_WAIT  # due, but held by another process meanwhile
            elif worked is not None:
                continue  # look at once at what is due next
            elif due is not None:
                wait = min(wait, (due - now).total_seconds())
        except SchemaMissing:  # the schema gate tells the operator to run `todo migrate`
            failing = True
        except Exception as error:  # the database may be down: try again next time
            if not failing:
                if isinstance(error, StorageUnavailable):  # said as what it is, with no traceback
                    logger.warning("delivering webhooks failed: %s; trying again every round", error)
                else:
                    logger.exception("delivering webhooks failed; trying again every round")
            failing = True
        await broker.outbox_rung(wait)
