"""Reminders that fell due, announced to the event streams of every process (PostgreSQL): one
notification each on `REMINDERS_CHANNEL`, heard by each process's change listener
(`change_listener`), which hands it to its `ChangeBroker`.

Sent by the process that claimed the reminders, after the claim committed, in one statement of
its own (autocommit): never inside the claiming transaction (see `psycopg._ANNOUNCE` for why).
A notification is lost if this process dies before sending it, or if a listener is not connected
at that moment; the streams then miss that reminder (their clients read `GET /reminders`
when they reconnect), while its webhooks go out regardless. None is sent twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import psycopg

from todo_adapters.sqlalchemy.psycopg import PostgresPool
from todo_core.errors import StorageUnavailable
from todo_core.webhooks import DueReminder

log = logging.getLogger(__name__)

#: The channel a reminder that fell due is announced on: `["<user id>", "<stream event data>"]`.
REMINDERS_CHANNEL = "todo_reminders"
_NOTIFY = f"SELECT pg_notify('{REMINDERS_CHANNEL}', payload) FROM unnest(%s::text[]) AS payload"


def payload(reminder: DueReminder) -> str:
    return json.dumps([reminder.user_id, reminder.stream_data()], separators=(",", ":"), ensure_ascii=False)


def parse(text: str) -> tuple[str, str] | None:
    """The user id and stream data of a notification; None if it is malformed."""
    try:
        user_id, data = json.loads(text)
    except (ValueError, TypeError):
        return None
    return (user_id, data) if isinstance(user_id, str) and isinstance(data, str) else None


class PostgresReminderAnnouncer:
    """`ReminderAnnouncer` through PostgreSQL's notifications."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def announce(self, reminders: Sequence[DueReminder]) -> None:
        try:
            async with self._pool.connection() as connection:
                await connection.execute(_NOTIFY, [[payload(reminder) for reminder in reminders]])
        except (StorageUnavailable, psycopg.Error) as error:
            log.warning("%d reminders were not announced to event streams (%s)", len(reminders), error)
