"""The broker's waits end when their task is cancelled, even when what they wait for comes in
the same turn of the event loop.

Python 3.11's `asyncio.wait_for` returns the awaited result instead of raising the task's
cancellation when both happen at once: the webhook delivery loop, cancelled at shutdown just as
a commit rang its doorbell, went on forever and the server's shutdown waited for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from todo_adapters.broker import ChangeBroker


async def cancelled_as_it_is_woken(wait: asyncio.Task[object], wake: Callable[[], None]) -> None:
    await asyncio.sleep(0)  # the wait has begun
    wake()
    wait.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(wait, 5)


async def test_the_delivery_loops_wait_for_its_doorbell_ends_when_cancelled_as_it_rings() -> None:
    broker = ChangeBroker()
    await cancelled_as_it_is_woken(asyncio.create_task(broker.outbox_rung(60)), broker.ring_outbox)


async def test_a_streams_wait_for_a_change_ends_when_cancelled_as_the_change_comes() -> None:
    broker = ChangeBroker()
    with broker.subscribe("alice") as subscription:
        await cancelled_as_it_is_woken(asyncio.create_task(subscription.next(60)), lambda: broker.publish("alice", 1))
