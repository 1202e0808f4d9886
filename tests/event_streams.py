"""Event streams in tests: reading Server-Sent Events off a response, and an ASGI transport that
hands a response over while the app is still sending it (httpx's own `ASGITransport` returns
only once the body is complete, which an event stream never is)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Message

from tests.conftest import Caller

#: How soon a change must be announced.
ANNOUNCE_SECONDS = 1.0
#: How long an app may take to end its response once the client has gone.
APP_EXIT_SECONDS = 5.0


@dataclass(frozen=True)
class ServerEvent:
    """One block of an event stream: an event (`name` and `data`) or a comment."""

    name: str | None
    data: str
    comment: str | None


class EventStream:
    """The events of a streamed response, read in the background so that waiting for one with
    a timeout leaves the stream intact."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._blocks: asyncio.Queue[ServerEvent | None] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        buffer = b""
        try:
            async for chunk in self.response.aiter_bytes():
                buffer += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self._blocks.put_nowait(_parsed(block.decode()))
        finally:
            self._blocks.put_nowait(None)

    async def next(self, timeout: float) -> ServerEvent | None:
        """The next block within `timeout` seconds; None once the stream has ended.

        :raises TimeoutError: nothing came in time.
        """
        return await asyncio.wait_for(self._blocks.get(), timeout)

    async def next_event(self, timeout: float) -> ServerEvent | None:
        """The next event (comments skipped) within `timeout` seconds; None once the stream has
        ended.

        :raises TimeoutError: no event came in time.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            block = await self.next(max(0.0, deadline - asyncio.get_running_loop().time()))
            if block is None or block.comment is None:
                return block

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _parsed(block: str) -> ServerEvent:
    name, data, comment = None, [], None
    for line in block.split("\n"):
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "":
            comment = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return ServerEvent(name, "\n".join(data), comment if name is None and not data else None)


async def changed_token(stream: EventStream) -> str:
    """The `next_since` of the next event, which must be `changed` and come within
    ANNOUNCE_SECONDS."""
    event = await stream.next_event(ANNOUNCE_SECONDS)
    assert event is not None, "the stream ended"
    assert event.name == "changed", event
    token: str = orjson.loads(event.data)["next_since"]
    return token


async def latest_token(user: Caller, since: str | None = None) -> str:
    """`next_since` of a sync that follows every page: the token of a copy with everything."""
    for _ in range(100):
        response = await user.request("GET", "/changes", params={"since": since} if since else {})
        assert response.status_code == 200, response.text
        page = response.json()
        since = page["next_since"]
        if not page["has_more"]:
            return since
    raise AssertionError("more than 100 pages of changes")


@contextlib.asynccontextmanager
async def open_events(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> AsyncIterator[EventStream]:
    """GET `url` as an event stream, for the block."""
    async with client.stream("GET", url, headers=headers) as response:
        stream = EventStream(response)
        try:
            yield stream
        finally:
            await stream.close()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in-process, returning its response as soon as it starts. Closing the
    response tells the app the client has gone, and waits (bounded) for the app to finish."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = b"".join([part async for part in request.stream])
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        request_taken = False

        async def receive() -> Message:
            nonlocal request_taken
            if not request_taken:
                request_taken = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                chunks.put_nowait(None)
                if not started.done():
                    started.set_exception(AssertionError("the app ended without a response"))

        task = asyncio.get_running_loop().create_task(run())
        start = await started
        return httpx.Response(start["status"], headers=start["headers"], stream=_AppBody(chunks, gone, task))


class _AppBody(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event, app: asyncio.Task[None]) -> None:
        self._chunks = chunks
        self._gone = gone
        self._app = app

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()
        try:
            await asyncio.wait_for(self._app, APP_EXIT_SECONDS)
        except TimeoutError as error:
            message = f"the app did not end the response within {APP_EXIT_SECONDS} s of the client leaving"
            raise AssertionError(message) from error
