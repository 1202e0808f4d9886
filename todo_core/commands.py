"""The one command path, as cosmicpython's message bus: every command that changes data runs here.

A command is a use case (`todo_core.use_cases`) that takes a unit of work already entered,
stages its changes in it and commits nothing. `run` enters the unit of work, lets the command
stage, records the events of the task changes it staged in the outbox (`todo_core.outbox`),
and commits. `run_once` does the same under an idempotency key (`todo_core.idempotency`):
it claims the key first, and records the command's answer under it in the same transaction. A
single request, a batch (one command of many steps), an idempotent retry, the MCP tools and
background work all run their commands through these two functions, so a command runs the
same way whoever sends it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate, Generic, ParamSpec, TypeVar

from todo_core.clock import Clock
from todo_core.errors import IdempotencyKeyReused, ValidationFailed
from todo_core.idempotency import KEY_MAX_LENGTH, Answer, IdempotencyKey
from todo_core.outbox import record_events
from todo_core.ports.unit_of_work import UnitOfWork

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Unchanged(Generic[T]):
    """What a command returns when it staged nothing (a change that changes nothing): its
    answer, and nothing to commit, so the change takes no change number and nothing syncs."""

    value: T


#: A use case that stages its changes in the unit of work it is given (entered) and commits nothing.
Command = Callable[Concatenate[UnitOfWork, P], Awaitable[T | Unchanged[T]]]


async def run(uow: UnitOfWork, command: Command[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run the command in `uow` and commit what it staged, with its events; return its answer.
    A command that raises commits nothing.

    :raises: whatever the command raises; `Conflict`, `StorageUnavailable` from the commit.
    """
    async with uow:
        done = await command(uow, *args, **kwargs)
        if isinstance(done, Unchanged):
            return done.value
        await _commit(uow)
    return done


async def run_once(
    uow: UnitOfWork,
    clock: Clock,
    key: IdempotencyKey,
    answer: Callable[[T], Answer],
    command: Command[P, T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> tuple[Answer, bool]:
    """Run the command in `uow` unless this key already ran it, and record `answer(result)` under
    the key with what the command staged. Return the answer (the recorded one, on a retry) and
    whether it was replayed. A command that raises records nothing: a retry runs it again.

    :raises ValidationFailed: the key is empty or longer than KEY_MAX_LENGTH.
    :raises IdempotencyKeyReused: the key came before with another request.
    """
    if not 1 <= len(key.key) <= KEY_MAX_LENGTH:
        raise ValidationFailed.single("Idempotency-Key", f"must be 1 to {KEY_MAX_LENGTH} characters")
    now = clock.now()
    async with uow:
        earlier = await uow.idempotency.claim(
            key.user_id, key.key, key.fingerprint, now=now, expired_before=now - key.kept_for
        )
        if earlier is not None:
            if earlier.fingerprint != key.fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with a different request")
            return earlier.answer, True
        done = await command(uow, *args, **kwargs)
        recorded = answer(done.value if isinstance(done, Unchanged) else done)
        await uow.idempotency.record(key.user_id, key.key, recorded)
        await _commit(uow)  # the key is committed even when the command staged nothing
    return recorded, False


async def _commit(uow: UnitOfWork) -> None:
    await record_events(uow.collect_task_changes(), uow.webhooks)
    await uow.commit()
