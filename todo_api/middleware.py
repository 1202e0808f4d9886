"""ASGI middleware: authentication of /api/ requests, and a cap on request body size."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.problems import BodyTooLarge, body_too_large, domain_problem
from todo_core.errors import AuthenticationFailed, DomainError, Forbidden
from todo_core.identity import Identity, IdentityVerifier

API_PREFIX = "/api/"
IMPORT_SUFFIX = "/import"


class BearerAuthentication:
    """Admit a request under /api/{user_id}/ only with a bearer token for that very user.

    It runs before routing and before anything reads the body, so a caller without a valid
    token learns nothing (not even whether its JSON parses) and costs no more than the check.
    The verified user id is left in `scope["state"]["user_id"]` for the routes, and the instant
    the token stops being accepted in `scope["state"]["token_valid_until"]` (for what must not
    outlive the token: an event stream).
    """

    def __init__(self, app: ASGIApp, verifier: Callable[[], IdentityVerifier]) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _route_path(scope).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            identity = await self._authorized(scope)
        except DomainError as error:
            await domain_problem(error)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user_id"] = identity.user_id
        state["token_valid_until"] = identity.valid_until
        await self.app(scope, receive, send)

    async def _authorized(self, scope: Scope) -> Identity:
        scheme, _, token = _header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("no bearer token")
        identity = await self.verifier().identify(token.strip())
        if identity.user_id != _route_path(scope)[len(API_PREFIX) :].split("/", 1)[0]:
            raise Forbidden("the token's subject is not the user in the path")
        return identity


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the `root_path` a proxy mounts the app under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, by `Content-Length` up front or while streaming;
    an import (`POST /api/{user_id}/import`) may be up to `max_import_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_import_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_import_bytes = max_bytes if max_import_bytes is None else max_import_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.max_import_bytes if _is_import(scope) else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await body_too_large()(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counted_receive, send)


def _is_import(scope: Scope) -> bool:
    """Whether the request is an import: `/api/{user_id}/import` (a user id holds no `/`)."""
    path = _route_path(scope)
    return path.startswith(API_PREFIX) and path.endswith(IMPORT_SUFFIX) and path.count("/") == 3
