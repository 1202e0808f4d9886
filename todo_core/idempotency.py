"""Safe retries: a command sent with an idempotency key runs once, however often it is sent.

The first request with a key runs its command and records what it answered under the key,
in the command's own transaction: a crash leaves both the change and the key, or neither. A
retry with the same key and the same request gets that recorded answer and changes nothing;
with another request, it is refused. A retry that arrives while the first is still running
waits for it (the first holds the key until it commits or rolls back), so exactly one of
them runs the command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

from todo_core.clock import Clock
from todo_core.errors import IdempotencyKeyReused, ValidationFailed

if TYPE_CHECKING:  # the ports name this module's records
    from todo_core.ports import (
        AccountEraser,
        CalendarFeedRepository,
        CategoryRepository,
        IdempotencyKeys,
        SettingsRepository,
        TaskRepository,
        UnitOfWork,
        WebhookRepository,
    )

KEY_MAX_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command answered, as the delivery layer puts it: enough to answer a retry alike."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Recorded:
    """A key's record: the request it came with (as a fingerprint) and what it answered."""

    fingerprint: str
    outcome: Outcome


class Joined:
    """A unit of work already entered, handed to a command that runs inside it: the command's
    own `async with` and `commit()` join the outer transaction, which commits when its owner
    says so (or rolls back, with everything the command staged)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @property
    def tasks(self) -> TaskRepository:
        return self._uow.tasks

    @property
    def categories(self) -> CategoryRepository:
        return self._uow.categories

    @property
    def idempotency(self) -> IdempotencyKeys:
        return self._uow.idempotency

    @property
    def settings(self) -> SettingsRepository:
        return self._uow.settings

    @property
    def feeds(self) -> CalendarFeedRepository:
        return self._uow.feeds

    @property
    def account(self) -> AccountEraser:
        return self._uow.account

    @property
    def webhooks(self) -> WebhookRepository:
        return self._uow.webhooks

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None  # an exception goes on to the owner, who rolls back

    async def commit(self) -> None:
        return None  # the owner commits


async def once(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    key: str,
    fingerprint: str,
    kept_for: timedelta,
    command: Callable[[UnitOfWork], Awaitable[Outcome]],
) -> tuple[Outcome, bool]:
    """Run `command` in `uow` unless this key already ran it; return its outcome and whether
    it was replayed. A command that fails records nothing: a retry runs it again.

    :raises ValidationFailed: the key is empty or longer than KEY_MAX_LENGTH.
    :raises IdempotencyKeyReused: the key came before with another request.
    """
    if not 1 <= len(key) <= KEY_MAX_LENGTH:
        raise ValidationFailed.single("Idempotency-Key", f"must be 1 to {KEY_MAX_LENGTH} characters")
    now: datetime = clock.now()
    async with uow:
        earlier = await uow.idempotency.claim(user_id, key, fingerprint, now=now, expired_before=now - kept_for)
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
            return earlier.outcome, True
        outcome = await command(Joined(uow))
        await uow.idempotency.record(user_id, key, outcome)
        await uow.commit()
    return outcome, False
