"""ASGI middleware: a cap on request body size."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.problems import BodyTooLarge, problem_response


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, by `Content-Length` up front or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            too_large = problem_response(413, "body-too-large", "The request body is larger than this service accepts.")
            await too_large(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        await self.app(scope, counted_receive, send)
