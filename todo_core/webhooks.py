"""Webhooks: a user's endpoints, and the events sent to them, signed per Standard Webhooks.

An event is written to the outbox (one delivery row per endpoint that wants it) in the same
transaction as the change it tells of: a change that rolls back sends nothing, one that commits
is never lost. Deliveries are then sent at least once, retried on the schedule below.

Signing (standardwebhooks.com): the secret is `whsec_` + base64 of random bytes; a message is
signed with HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>` under those bytes, sent
as `webhook-signature: v1,<base64>`. A retry keeps its `webhook-id`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from todo_core.ids import new_id
from todo_core.views import instant_text

TASK_CREATED = "task.created"
TASK_UPDATED = "task.updated"
TASK_COMPLETED = "task.completed"
TASK_DELETED = "task.deleted"
REMINDER_DUE = "reminder.due"
EVENT_TYPES = (TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_DELETED, REMINDER_DUE)

#: Random bytes in a secret (Standard Webhooks asks for 24 to 64).
SECRET_BYTES = 32
SECRET_PREFIX = "whsec_"
URL_MAX = 2048
DESCRIPTION_MAX = 500

#: How long after a failed attempt the next one is made (each ±20 % at random, so that the
#: retries of many deliveries that failed together do not arrive together): the schedule of
#: Svix, the reference implementation. After the last one fails the delivery is given up.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
ATTEMPTS_MAX = len(RETRY_DELAYS) + 1
JITTER = 0.2
#: An endpoint whose every attempt failed for this long is disabled (its deliveries stop).
FAILING_DISABLES_AFTER = timedelta(hours=24)
#: How long a delivery that was delivered or given up stays in its endpoint's history (by default).
FINISHED_DELIVERIES_KEPT = timedelta(hours=72)
#: How long a claimed delivery is left to the process that claimed it before another may try
#: it again (an attempt takes at most its timeout, far less than this).
CLAIM_LEASE = timedelta(minutes=2)


class DeliveryState:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Webhook:
    """An endpoint of a user's, with its secret (shown to the user only when made)."""

    user_id: str
    id: UUID
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    created_at: datetime
    #: Since when every attempt to it failed (None: the last one succeeded, or none was made).
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint, and how its attempts went."""

    user_id: str
    webhook_id: UUID
    event_id: UUID
    event_type: str
    body: str
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    #: The task of a `reminder.due`.
    task_id: UUID | None = None

    @property
    def message_id(self) -> str:
        """Its `webhook-id`: the same for every attempt (and for each endpoint of the event)."""
        return f"msg_{self.event_id.hex}"


@dataclass(frozen=True, slots=True)
class DueReminder:
    """A task's reminder that fell due, claimed (and so taken out of the store) by one process:
    what its `reminder.due` deliveries and its event-stream announcement are made from."""

    user_id: str
    task_id: UUID
    event_id: UUID
    due_at: datetime
    #: The `reminder.due` event's JSON, as a webhook receives it.
    body: str

    @property
    def message_id(self) -> str:
        """The `webhook-id` of its deliveries."""
        return f"msg_{self.event_id.hex}"

    def stream_data(self) -> str:
        """The `data` of the `event: reminder` on the user's event stream: small (it travels in a
        PostgreSQL notification, at most 8000 bytes), enough to show a notification."""
        task = json.loads(self.body)["data"]
        return json.dumps(
            {
                "id": self.message_id,
                "task_id": str(self.task_id),
                "title": task["title"],
                "remind_at": instant_text(self.due_at),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery due now, taken by one process for one attempt, with where it goes."""

    delivery: Delivery
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt got: a status (2xx: delivered) or an error before any status."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_webhook(user_id: str, url: str, events: tuple[str, ...], description: str | None, now: datetime) -> Webhook:
    return Webhook(user_id, new_id(), url, events, description, new_secret(), now)


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header's value for a message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def event_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON a receiver gets: `{"type", "timestamp", "data"}`."""
    return json.dumps(
        {"type": event_type, "timestamp": instant_text(timestamp), "data": data},
        default=_plain,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, date | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def next_attempt_after(attempts: int, now: datetime, rng: random.Random | None = None) -> datetime | None:
    """When to try again after the `attempts`-th attempt failed; None: give up."""
    if attempts >= ATTEMPTS_MAX:
        return None
    delay = RETRY_DELAYS[attempts - 1].total_seconds()
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=delay * spread)
