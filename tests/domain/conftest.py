"""The domain suite's world: a clock that stands still until told to move, and an in-memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from todo_adapters.memory import InMemoryStore, InMemoryTaskViews, InMemoryUnitOfWork

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class FixedClock:
    """Tells the same time on every call, until a test advances it."""

    def __init__(self, now: datetime = START) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> None:
        self._now += by


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store() -> InMemoryStore:
    """Everything every user of the test has."""
    return InMemoryStore()


@pytest.fixture
def uow(store: InMemoryStore) -> Callable[[], InMemoryUnitOfWork]:
    """Makes units of work on the test's store."""
    return lambda: InMemoryUnitOfWork(store)


@pytest.fixture
def views(store: InMemoryStore) -> InMemoryTaskViews:
    """The read side of the test's store."""
    return InMemoryTaskViews(store)
