"""Webhooks and their outbox on every adapter (memory, SQLite, PostgreSQL): events written with
the change or not at all, claimed by one process at a time, retried, forgotten with their user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from tests.conftest import Backend
from tests.domain.conftest import FixedClock
from todo_adapters.sqlalchemy.psycopg import PostgresPool, PostgresUnitOfWork
from todo_core.commands import run
from todo_core.errors import BatchOperationFailed, NotFound
from todo_core.task import TaskFields
from todo_core.use_cases.account import erase_account
from todo_core.use_cases.batch import CreateTask, DeleteTask, run_batch
from todo_core.use_cases.sync import purge_expired
from todo_core.use_cases.tasks import complete_task, create_task, delete_task, patch_task
from todo_core.use_cases.webhooks import (
    checked_webhook,
    create_webhook,
    delete_webhook,
    deliver_due,
    list_deliveries,
    next_due,
)
from todo_core.webhooks import CLAIM_LEASE, AttemptOutcome, ClaimedDelivery, DueReminder


class AnyDestination:
    async def refusal(self, url: str) -> str | None:
        return None


class RecordingSender:
    """Answers each attempt for `user_id` with the next of `statuses` (200 once they run out, and
    for other tests' users, whose deliveries may be due in the same database)."""

    def __init__(self, user_id: str = "", *statuses: int) -> None:
        self.user_id = user_id
        self.statuses = list(statuses)
        self.sent: list[ClaimedDelivery] = []

    async def send(self, claimed: ClaimedDelivery, timestamp: int) -> AttemptOutcome:
        self.sent.append(claimed)
        mine = claimed.delivery.user_id == self.user_id
        return AttemptOutcome(self.statuses.pop(0) if mine and self.statuses else 200, None)


@pytest.fixture
def clock() -> FixedClock:
    # A moment of this test's own: what other tests left due in the same database is due later.
    return FixedClock(datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid4().int % 10**8))


async def _registered(backend: Backend, clock: FixedClock, user_id: str, events: list[str] | None = None) -> str:
    checked = await checked_webhook(clock, AnyDestination(), user_id, "https://example.com/hook", events, None)
    webhook = await run(backend.uow_factory(), create_webhook, checked)
    return str(webhook.id)


def _mine(sender: RecordingSender, user_id: str) -> list[dict[str, object]]:
    return [json.loads(sent.delivery.body) for sent in sender.sent if sent.delivery.user_id == user_id]


class RecordingAnnouncer:
    """What would be told to the event streams."""

    def __init__(self) -> None:
        self.announced: list[DueReminder] = []

    async def announce(self, reminders: Sequence[DueReminder]) -> None:
        self.announced += reminders

    def of(self, user_id: str) -> list[DueReminder]:
        return [reminder for reminder in self.announced if reminder.user_id == user_id]


async def _deliver(
    backend: Backend, clock: FixedClock, sender: RecordingSender, announcer: RecordingAnnouncer | None = None
) -> None:
    for _ in range(20):
        done = await deliver_due(backend.uow_factory, clock, sender, announcer or RecordingAnnouncer(), batch=100)
        if not (done.attempted or done.reminded):
            return
    raise AssertionError("deliveries are still due")


async def test_a_committed_change_is_delivered_and_a_rolled_back_one_is_not(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id = new_user()
    await _registered(backend, clock, user_id)
    with pytest.raises(BatchOperationFailed):
        await run(
            backend.uow_factory(), run_batch, clock, user_id, [CreateTask(TaskFields("Never")), DeleteTask(uuid4())]
        )
    task = await run(backend.uow_factory(), create_task, clock, user_id, TaskFields("Kept"))
    await run(backend.uow_factory(), complete_task, clock, user_id, task.id, True)
    sender = RecordingSender()

    await _deliver(backend, clock, sender)

    # Both made at the same instant (the test's clock stands still): in no particular order.
    assert sorted((event["type"], event["data"]["title"]) for event in _mine(sender, user_id)) == [  # type: ignore[index]
        ("task.completed", "Kept"),
        ("task.created", "Kept"),
    ]


async def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id = new_user()
    await _registered(backend, clock, user_id)
    await run(backend.uow_factory(), create_task, clock, user_id, TaskFields("Once"))

    async def claim() -> list[ClaimedDelivery]:
        async with backend.uow_factory() as uow:
            found = await uow.webhooks.claim(clock.now(), clock.now() + CLAIM_LEASE, 100)
            await uow.commit()
        return [item for item in found if item.delivery.user_id == user_id]

    (first,) = await claim()
    assert first.delivery.attempts == 1
    assert await claim() == []
    clock.advance(CLAIM_LEASE + timedelta(seconds=1))
    (again,) = await claim()
    assert again.delivery.event_id == first.delivery.event_id and again.delivery.attempts == 2


async def test_a_failed_attempt_is_retried_later_with_the_same_message(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id = new_user()
    webhook_id = await _registered(backend, clock, user_id)
    await run(backend.uow_factory(), create_task, clock, user_id, TaskFields("Retried"))
    sender = RecordingSender(user_id, 503)
    await _deliver(backend, clock, sender)
    assert len(_mine(sender, user_id)) == 1
    clock.advance(timedelta(seconds=7))  # past 5 s + 20 %

    await _deliver(backend, clock, sender)

    first, retry = [sent.delivery for sent in sender.sent if sent.delivery.user_id == user_id]
    assert first.message_id == retry.message_id and first.body == retry.body
    (shown,) = await list_deliveries(backend.reader_factory(), user_id, UUID(webhook_id))
    assert (shown.state, shown.attempts, shown.last_status) == ("delivered", 2, 200)


async def test_deleting_an_endpoint_or_erasing_the_user_forgets_what_was_not_sent(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    alice, bob = new_user(), new_user()
    webhook_id = await _registered(backend, clock, alice)
    await _registered(backend, clock, bob)
    await run(backend.uow_factory(), create_task, clock, alice, TaskFields("A"))
    await run(backend.uow_factory(), create_task, clock, bob, TaskFields("B"))
    await run(backend.uow_factory(), delete_webhook, alice, UUID(webhook_id))
    await run(backend.uow_factory(), erase_account, bob, bob)
    sender = RecordingSender()

    await _deliver(backend, clock, sender)

    assert _mine(sender, alice) == [] and _mine(sender, bob) == []
    with pytest.raises(NotFound):
        await list_deliveries(backend.reader_factory(), alice, UUID(webhook_id))


async def test_two_claims_at_once_share_nothing(
    postgres_pool: PostgresPool, new_user: Callable[[], str], clock: FixedClock
) -> None:
    """PostgreSQL, where replicas claim at once: a claim skips the rows another open claim
    holds, rather than waiting or taking them too. (SQLite and memory claim one writer at a
    time; the lease test above covers them.)"""
    user_id = new_user()
    checked = await checked_webhook(clock, AnyDestination(), user_id, "https://example.com/", None, None)
    webhook = await run(PostgresUnitOfWork(postgres_pool), create_webhook, checked)
    assert webhook.id
    for title in ("1", "2", "3"):
        await run(PostgresUnitOfWork(postgres_pool), create_task, clock, user_id, TaskFields(title))
    first_holds, second_done = asyncio.Event(), asyncio.Event()
    claimed: dict[str, list[str]] = {}

    async def claim(name: str, limit: int) -> None:
        async with PostgresUnitOfWork(postgres_pool) as uow:
            found = await uow.webhooks.claim(clock.now(), clock.now() + CLAIM_LEASE, limit)
            claimed[name] = [str(item.delivery.event_id) for item in found if item.delivery.user_id == user_id]
            if name == "first":
                first_holds.set()
                await asyncio.wait_for(second_done.wait(), 10)
            await uow.commit()
        if name == "second":
            second_done.set()

    async def second() -> None:
        await asyncio.wait_for(first_holds.wait(), 10)
        await claim("second", 100)

    await asyncio.wait_for(asyncio.gather(claim("first", 1), second()), 20)
    assert len(claimed["first"]) <= 1
    assert set(claimed["first"]).isdisjoint(claimed["second"])
    assert len(claimed["first"]) + len(claimed["second"]) == 3


async def test_a_due_reminder_is_claimed_once_and_makes_its_deliveries_and_its_stream_event(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id, without_endpoints = new_user(), new_user()
    await _registered(backend, clock, user_id, ["reminder.due"])
    remind_at = clock.now() + timedelta(hours=1)
    task = await run(backend.uow_factory(), create_task, clock, user_id, TaskFields("Call", remind_at=remind_at))
    await run(backend.uow_factory(), create_task, clock, without_endpoints, TaskFields("Alone", remind_at=remind_at))
    assert await next_due(backend.reader_factory()) is not None
    sender, announcer = RecordingSender(), RecordingAnnouncer()
    await _deliver(backend, clock, sender, announcer)
    assert announcer.of(user_id) == [] and _mine(sender, user_id) == [], "before its time"

    clock.advance(timedelta(hours=1))
    await _deliver(backend, clock, sender, announcer)
    await _deliver(backend, clock, sender, announcer)

    (reminder,) = announcer.of(user_id)
    assert (reminder.task_id, reminder.due_at) == (task.id, remind_at)
    (sent,) = [item.delivery for item in sender.sent if item.delivery.user_id == user_id]
    assert sent.message_id == reminder.message_id and sent.event_type == "reminder.due"
    assert json.loads(reminder.stream_data()) == {
        "id": reminder.message_id,
        "task_id": str(task.id),
        "title": "Call",
        "remind_at": json.loads(sent.body)["timestamp"],
    }
    assert len(announcer.of(without_endpoints)) == 1, "a stream is told even without endpoints"


async def test_completing_deleting_or_moving_a_task_cancels_its_reminder(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id = new_user()
    soon = clock.now() + timedelta(minutes=5)
    completed, deleted, moved = [
        await run(backend.uow_factory(), create_task, clock, user_id, TaskFields(title, remind_at=soon))
        for title in ("Completed", "Deleted", "Moved")
    ]
    await run(backend.uow_factory(), complete_task, clock, user_id, completed.id, True)
    await run(backend.uow_factory(), delete_task, clock, user_id, deleted.id)
    later = soon + timedelta(hours=1)
    await run(backend.uow_factory(), patch_task, clock, user_id, moved.id, {"remind_at": later})
    announcer = RecordingAnnouncer()

    clock.advance(timedelta(minutes=6))
    await _deliver(backend, clock, RecordingSender(), announcer)
    assert announcer.of(user_id) == []
    clock.advance(timedelta(hours=1))
    await _deliver(backend, clock, RecordingSender(), announcer)
    assert [(r.task_id, r.due_at) for r in announcer.of(user_id)] == [(moved.id, later)]


async def test_finished_deliveries_are_purged_in_batches_and_pending_ones_kept(
    backend: Backend, new_user: Callable[[], str], clock: FixedClock
) -> None:
    user_id = new_user()
    webhook_id = UUID(await _registered(backend, clock, user_id, ["task.created"]))
    for title in ("1", "2", "3", "4", "5"):
        await run(backend.uow_factory(), create_task, clock, user_id, TaskFields(title))
    await _deliver(backend, clock, RecordingSender(user_id, 200, 200, 200, 500))  # the 4th fails: pending
    clock.advance(timedelta(hours=2))
    await run(backend.uow_factory(), create_task, clock, user_id, TaskFields("Recent"))
    await _deliver(backend, clock, RecordingSender(user_id, 200, 200))  # the retry and the recent one

    purged = await purge_expired(
        backend.retention, clock, tombstones=timedelta(days=30), keys=timedelta(days=1),
        deliveries=timedelta(hours=1), batch=2,
    )  # fmt: skip

    assert purged is not None and purged.deliveries >= 4
    left = await list_deliveries(backend.reader_factory(), user_id, webhook_id)
    assert sorted(d.state for d in left) == ["delivered", "delivered"], "finished within the hour: kept"
    assert purged.batches >= 2
