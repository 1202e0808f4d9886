"""`Idempotency-Key` on the POSTs that create or change data: a retry gets the first answer.

The first request's answer (status, `Location`, `ETag`, body) is recorded under the key in
the same transaction as its change (see `todo_core.idempotency`; the runner, `todo_core.commands`,
does it). A retry with the same key and the same request (method, path, body bytes) gets it
again, marked `Idempotent-Replayed: true`; the same key with another request is a 422.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Header, Request, Response

from todo_api.container import Container
from todo_api.dependencies import CurrentClock
from todo_core import commands
from todo_core.clock import Clock
from todo_core.commands import Command
from todo_core.idempotency import KEY_MAX_LENGTH, Answer, IdempotencyKey
from todo_core.ports import UnitOfWork

REPLAYED = "Idempotent-Replayed"
#: The headers of an answer that a replay repeats.
_REPLAYED_HEADERS = ("content-type", "location", "etag")

T = TypeVar("T")
P = ParamSpec("P")


class Idempotency:
    """How one request runs its command (through the one runner, `todo_core.commands`): once per
    key, if it carries one."""

    def __init__(self, request: Request, key: str | None, clock: Clock, kept_for: timedelta) -> None:
        self._request = request
        self._key = key
        self._clock = clock
        self._kept_for = kept_for

    async def run(
        self,
        uow: UnitOfWork,
        user_id: str,
        respond: Callable[[T], Response],
        command: Command[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Response:
        """The response `respond` makes of the command's result; with a key, the first one's."""
        if self._key is None:
            return respond(await commands.run(uow, command, *args, **kwargs))
        key = IdempotencyKey(user_id, self._key, await self._fingerprint(), self._kept_for)

        def recorded(result: T) -> Answer:
            response = respond(result)
            headers = tuple((name, response.headers[name]) for name in _REPLAYED_HEADERS if name in response.headers)
            return Answer(response.status_code, headers, bytes(response.body))

        answer, replayed = await commands.run_once(uow, self._clock, key, recorded, command, *args, **kwargs)
        headers = dict(answer.labels)
        if replayed:
            headers[REPLAYED] = "true"
        return Response(answer.body, status_code=answer.code, headers=headers)

    async def _fingerprint(self) -> str:
        request = self._request
        digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
        digest.update(await request.body())
        return digest.hexdigest()


async def idempotency(
    request: Request,
    clock: CurrentClock,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=KEY_MAX_LENGTH,
            description="Any unique string (a UUID will do) that makes a retry of this request safe: "
            "a retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`) "
            "and changes nothing. Remembered for 24 hours (TODO_IDEMPOTENCY_KEY_HOURS).",
        ),
    ] = None,
) -> Idempotency:
    container: Container = request.app.state.container
    kept_for = timedelta(hours=container.settings().idempotency_key_hours)
    return Idempotency(request, key, clock, kept_for)


Idempotent = Annotated[Idempotency, Depends(idempotency)]
