"""The PostgreSQL change listener: what it hears on `todo_changes` reaches the broker's
subscribers, a malformed notification does not stop it, and a lost connection is re-made and
caught up on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import libpq_url
from todo_adapters.broker import ChangeBroker
from todo_adapters.sqlalchemy.change_listener import Backoff, PostgresChangeListener
from todo_adapters.sqlalchemy.psycopg import CHANGES_CHANNEL

pytestmark = pytest.mark.postgres

LISTEN_SECONDS = 10.0
HEAR_SECONDS = 1.0
QUIET_SECONDS = 0.3
#: Longer than the test's work while the listener is away, so that it happens while away.
RECONNECT_AFTER = Backoff(first=2.0, longest=2.0)


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(libpq_url(postgres_url), autocommit=True) as connection:
        yield connection


@pytest.fixture
async def listened(postgres_url: str) -> AsyncIterator[tuple[PostgresChangeListener, ChangeBroker]]:
    broker = ChangeBroker()
    listener = PostgresChangeListener(make_url(postgres_url), broker, backoff=RECONNECT_AFTER)
    listener.start()
    try:
        await listener.listening(LISTEN_SECONDS)
        yield listener, broker
    finally:
        await listener.stop()


async def notify(database: psycopg.AsyncConnection[Any], payload: str) -> None:
    await database.execute("SELECT pg_notify(%s, %s)", [CHANGES_CHANNEL, payload])


async def test_a_notification_reaches_the_users_subscribers_only(
    listened: tuple[PostgresChangeListener, ChangeBroker], database: psycopg.AsyncConnection[Any]
) -> None:
    _, broker = listened
    with broker.subscribe("tenant:7:alice") as alice, broker.subscribe("tenant") as tenant:
        await notify(database, "12:tenant:7:alice")
        assert await alice.next(HEAR_SECONDS) == 12
        assert await tenant.next(QUIET_SECONDS) is None


async def test_malformed_notifications_are_ignored_and_listening_goes_on(
    listened: tuple[PostgresChangeListener, ChangeBroker], database: psycopg.AsyncConnection[Any]
) -> None:
    _, broker = listened
    with broker.subscribe("bob") as bob, broker.subscribe("") as nobody:
        for payload in ("x:bob", "bob", "99", "7:", "²:bob", "-3:bob", ""):
            await notify(database, payload)
        await notify(database, "4:bob")
        assert await bob.next(HEAR_SECONDS) == 4
        assert await nobody.next(QUIET_SECONDS) is None


async def test_a_lost_connection_is_remade_and_what_changed_meanwhile_is_announced(
    listened: tuple[PostgresChangeListener, ChangeBroker], database: psycopg.AsyncConnection[Any]
) -> None:
    listener, broker = listened
    first = await listener.listening(LISTEN_SECONDS)
    with broker.subscribe("carol") as carol:
        # Waits (up to 5 s) for the backend to be gone: no notification can reach it after this.
        terminated = await database.execute("SELECT pg_terminate_backend(%s, 5000)", [first])
        assert (await terminated.fetchone()) == (True,)
        # A change committed while nobody listens: its notification is lost for this process.
        async with database.transaction():
            await database.execute(
                "INSERT INTO user_changes (user_id, seq, horizon) VALUES ('carol', 5, 0) "
                "ON CONFLICT (user_id) DO UPDATE SET seq = 5"
            )
            await notify(database, "5:carol")
        second = await _reconnected(listener, first)
        assert second != first
        assert await carol.next(HEAR_SECONDS) == 5
        await notify(database, "6:carol")
        assert await carol.next(HEAR_SECONDS) == 6


async def _reconnected(listener: PostgresChangeListener, previous: int) -> int:
    """The listener's new server process, once it has one."""
    deadline = asyncio.get_running_loop().time() + LISTEN_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        pid = await listener.listening(LISTEN_SECONDS)
        if pid != previous:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"the listener did not reconnect within {LISTEN_SECONDS} s")
