"""Purges of what is kept only for a while (tombstones, idempotency keys), off the request path:
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
from todo_core.use_cases.sync import Purged, purge_expired
from todo_core.use_cases.webhooks import DeliveryRound, deliver_due

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
    except Exception:  # the next maintenance round tries again
        logger.exception("deleting what interrupted imports wrote failed")


def described(purged: Purged | None) -> str:
    if purged is None:
        return "another process is purging: skipped"
    return f"purged {purged.tombstones} tombstones and {purged.keys} idempotency keys in {purged.batches} transactions"


async def purge_periodically(container: Container, settings: Settings, *, interval: float, first_wait: float) -> None:
    """Purge every `interval` seconds after `first_wait`, until cancelled; a failure is logged
    and the next round tries again."""
    await asyncio.sleep(first_wait)
    while True:
        try:
            purged = await purge_once(container, settings)
            logger.log(logging.INFO if purged is not None else logging.DEBUG, "%s", described(purged))
        except Exception:  # the database may be down: try again next time
            logger.exception("purging expired tombstones and idempotency keys failed")
        await asyncio.sleep(interval)


#: The most deliveries one round claims (and then attempts, one after the other).
DELIVERY_BATCH = 20


async def deliver_once(container: Container) -> DeliveryRound:
    """Claim the due webhook deliveries (a batch at most), attempt them, record how each went.

    :raises StorageUnavailable: the database cannot be reached.
    """
    return await deliver_due(
        container.unit_of_work, container.clock(), container.webhook_sender(), batch=DELIVERY_BATCH
    )


async def deliver_periodically(container: Container, settings: Settings) -> None:
    """Deliver webhooks until cancelled: again at once after a full batch, otherwise after
    TODO_WEBHOOKS_POLL_SECONDS; a failure is logged (once while it lasts: a database that is down
    for a minute is one message, not sixty) and the next round tries again."""
    failing = False
    while True:
        claimed = 0
        try:
            claimed = (await deliver_once(container)).attempted
            if failing:
                logger.info("delivering webhooks works again")
            failing = False
        except Exception:  # the database may be down: try again next time
            if not failing:
                logger.exception("delivering webhooks failed; trying again every round")
            failing = True
        if claimed < DELIVERY_BATCH:
            await asyncio.sleep(settings.webhooks_poll_seconds)
