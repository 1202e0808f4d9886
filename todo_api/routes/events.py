"""GET /api/{user_id}/events: Server-Sent Events that tell a client when to sync, and when a
reminder falls due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import anyio
import orjson
from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from todo_adapters.broker import ChangeBroker, Subscription
from todo_api.dependencies import AppMetrics, Broker, CurrentSettings, SyncTokens, TokenValidUntil, UserId
from todo_api.metrics import Metrics
from todo_api.problems import domain_problem, problem_responses
from todo_api.routing import ApiRoute
from todo_api.sync_tokens import SyncTokenCodec
from todo_core.errors import TooManyEventStreams

#: A client that does not take what is sent within this time (its connection stalled) is
#: dropped, rather than holding the stream open for ever.
SEND_TIMEOUT_SECONDS = 30.0
#: When the server shuts down, how long a stream has to end cleanly (its last chunk sent)
#: before it is cut; well under the time a supervisor waits after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 1.0

_EVENTS_DESCRIPTION = """\
A stream of Server-Sent Events, open until the bearer token expires (then it ends: reconnect
with a fresh token), the client leaves or the server stops (reconnect).

- `event: changed`, `data: {"next_since": "<sync token>"}`: the user's data changed.
  `next_since` is the sync token of a copy that has every change so far: sync with
  `GET /api/{user_id}/changes?since=<your token>` unless your token is already this one.
  Changes that come quickly are announced once, with the newest token.
- `event: reminder`, `data: {"id", "task_id", "title", "remind_at"}`: an open task's reminder
  fell due (within 5 seconds of `remind_at`). `id` is the `webhook-id` of the same reminder's
  `reminder.due` webhooks. Sent once, to the streams open at that moment, on every server
  process; completing or deleting the task, or moving its reminder, before then cancels it. A
  stream that was closed then misses it: `GET /api/{user_id}/reminders?until=` lists what is due.
- Comment lines (`: ping ...`) every 15 seconds by default, so that proxies keep the
  connection open.

Every change committed after the response starts is announced within a second (on SQLite,
only changes made by the same server process). Sync once each time the stream opens: that
covers what changed while it was closed.
"""
_EXAMPLE = 'event: changed\r\ndata: {"next_since":"WzcsMyxudWxsXQ.mF1tHq8f0h7QnHkT3u5b2w"}\r\n\r\n'

router = APIRouter(route_class=ApiRoute, prefix="/api/{user_id}", tags=["sync"])


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": _EVENTS_DESCRIPTION,
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        },
        **problem_responses(401, 403, 413, 422, 429),
    },
)
async def stream_change_events(
    user_id: UserId,
    broker: Broker,
    tokens: SyncTokens,
    valid_until: TokenValidUntil,
    settings: CurrentSettings,
    metrics: AppMetrics,
) -> EventSourceResponse:
    """Live change events: when to sync (see the 200 response)."""
    return ChangeEventStream(
        broker,
        tokens,
        user_id,
        valid_until=valid_until,
        heartbeat_seconds=settings.events_heartbeat_seconds,
        metrics=metrics,
        max_streams=settings.max_event_streams,
    )


class ChangeEventStream(EventSourceResponse):
    """One user's `changed` and `reminder` events until `valid_until` (POSIX seconds), the client leaves or the
    server shuts down: sse-starlette sees uvicorn's `should_exit` and sets `shutdown`, and the
    stream ends cleanly, so that it does not hold up uvicorn's graceful shutdown (which waits
    for every open connection).

    It subscribes before it sends its headers: whatever commits after the client sees the
    response start is announced.
    """

    def __init__(
        self,
        broker: ChangeBroker,
        tokens: SyncTokenCodec,
        user_id: str,
        *,
        valid_until: float,
        heartbeat_seconds: float,
        metrics: Metrics,
        max_streams: int,
    ) -> None:
        self._broker = broker
        self._max_streams = max_streams
        self._metrics = metrics
        self._tokens = tokens
        self._user_id = user_id
        self._valid_until = valid_until
        self._subscription: Subscription | None = None
        self._shutdown = anyio.Event()
        super().__init__(
            self._events(),
            headers={"Cache-Control": "no-cache"},
            ping=heartbeat_seconds,
            send_timeout=SEND_TIMEOUT_SECONDS,
            shutdown_event=self._shutdown,
            shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Counted and subscribed with nothing awaited in between: two streams opening at once
        # cannot both take the last place.
        if self._broker.subscriptions_of(self._user_id) >= self._max_streams:
            await domain_problem(TooManyEventStreams(self._max_streams))(scope, receive, send)
            return
        open_streams = self._metrics.event_streams
        with self._broker.subscribe(self._user_id) as self._subscription:
            open_streams.inc()
            try:
                await super().__call__(scope, receive, send)
            finally:
                open_streams.dec()

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        subscription = self._subscription
        assert subscription is not None, "iterated outside __call__"
        shutdown = asyncio.ensure_future(self._shutdown.wait())
        try:
            while (remaining := self._valid_until - time.time()) > 0:
                change = asyncio.ensure_future(subscription.next(timeout=remaining))
                await asyncio.wait({change, shutdown}, return_when=asyncio.FIRST_COMPLETED)
                if shutdown.done():
                    change.cancel()
                    return
                seq = change.result()
                for data in subscription.reminders():
                    yield ServerSentEvent(data, event="reminder")
                if seq is not None:
                    data = orjson.dumps({"next_since": self._tokens.after(self._user_id, seq)}).decode()
                    yield ServerSentEvent(data, event="changed")
        finally:
            shutdown.cancel()
