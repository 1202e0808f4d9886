"""Reading a request in a bare ASGI app, as the tests' loopback receivers do."""

from __future__ import annotations

from typing import Any


async def read_request(scope: dict[str, Any], receive: Any) -> tuple[dict[str, str], bytes]:
    """The request's headers (names as sent, lower case) and its whole body."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return {name.decode(): value.decode() for name, value in scope["headers"]}, body
