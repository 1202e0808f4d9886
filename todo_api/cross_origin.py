"""Cross-origin calls from browsers (CORS), for the origins of TODO_CORS_ORIGINS: Starlette's
middleware, told which headers a front end sends and may read, with two differences."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What a front end sends: the token, JSON, conditional requests, retry keys and a trace id.
REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID")
#: What its scripts may read, besides the headers every response exposes (Content-Type, …).
EXPOSED_HEADERS = (
    "Link",
    "ETag",
    "Location",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: How long a browser may reuse a preflight's answer.
PREFLIGHT_SECONDS = 600


def is_preflight(scope: Scope) -> bool:
    """Whether the request is a browser's CORS preflight: `OPTIONS` with `Origin` and
    `Access-Control-Request-Method`. It never carries credentials, and is never asked for them."""
    if scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names


class CrossOrigin(CORSMiddleware):
    """Listed origins may send credentials (`Access-Control-Allow-Credentials: true`); `*` allows
    any origin, without credentials (browsers refuse the two together).

    Unlike Starlette's own: a request from an origin that is not allowed gets no CORS header at
    all (Starlette adds its exposed headers and credentials flag to every response), and its
    preflight is answered as any `OPTIONS` request (404 or 405, never 401: see
    Authentication); and a preflight from an allowed origin that asks for a method or header
    not allowed is answered with what is allowed, for the browser to refuse naming what it
    missed, rather than with a plain-text 400.
    """

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        any_origin = origins == ["*"]
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=REQUEST_HEADERS,
            allow_credentials=not any_origin,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_preflight(scope):
            origin = Headers(scope=scope)["origin"]
            if not self.is_allowed_origin(origin):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        headers = dict(self.preflight_headers)
        if self.preflight_explicit_allow_origin:
            headers["Access-Control-Allow-Origin"] = request_headers["origin"]
        return Response(status_code=200, headers=headers)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            # Whether CORS headers come depends on the origin: a cache must keep them apart.
            message.setdefault("headers", [])
            MutableHeaders(scope=message).add_vary_header("Origin")
            await send(message)
            return
        await super().send(message, send, request_headers)
