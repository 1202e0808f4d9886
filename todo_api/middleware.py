"""ASGI middleware: a request's id, metrics and log line; authentication of /api/ requests; a cap
on request body size."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable

from starlette.routing import BaseRoute, Mount, Route, Router, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.cross_origin import is_preflight
from todo_api.logs import ACCESS_LOGGER, REQUEST_ID, UserIdHasher, request_id
from todo_api.metrics import UNMATCHED_ROUTE, Metrics
from todo_api.problems import BodyTooLarge, body_too_large, domain_problem, internal_error
from todo_api.representation import public_base_of
from todo_core.errors import AuthenticationFailed, CredentialProblem, DomainError, Forbidden, IdentityUnavailable
from todo_core.identity import Identity, IdentityVerifier

API_PREFIX = "/api/"
#: The MCP endpoint (todo_api/assistant.py): any user's token, the tools check the user.
MCP_PATH = "/mcp"
#: Where a client of /mcp learns how to get a token (RFC 9728), named in its 401.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"
IMPORT_SUFFIX = "/import"


#: Said for a request whose client went away before it was answered (nginx's number).
CLIENT_CLOSED_REQUEST = 499


#: Where a request's unexpected failure is logged, with its traceback and request id.
ERROR_LOGGER = logging.getLogger("todo_api.errors")


class RequestTelemetry:
    """Every HTTP request gets an id, `X-Request-ID`: the client's when it sent a safe one, else a
    new one. It is sent back in the response and stamped on every log record made while the
    request runs. The request is counted and timed by route template (`/api/{user_id}/tasks`,
    never the path itself, which holds user ids) and status, and, with `access_log`, logged in
    one line with the user's id hashed (never the token), and why a credential was refused
    (`auth_failure`, left in `scope["state"]` by `BearerAuthentication`).
    """

    def __init__(
        self,
        app: ASGIApp,
        router: Router,
        metrics: Callable[[], Metrics],
        user_id_hasher: Callable[[], UserIdHasher],
        access_log: bool,
    ) -> None:
        self.app = app
        self.router = router
        self.metrics = metrics
        self.user_id_hasher = user_id_hasher
        self.access_log = access_log
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value
                break
        identifier = request_id(given)
        echoed = (b"x-request-id", identifier.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        context = REQUEST_ID.set(identifier)
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            status = status or CLIENT_CLOSED_REQUEST
            raise
        except Exception:
            if status:  # the answer has begun: the server can only cut it short
                raise
            # Answered here rather than by Starlette's ServerErrorMiddleware outside this one,
            # so that the 500 carries the request id and the traceback is logged under it.
            status = 500
            ERROR_LOGGER.exception("%s %s failed", scope["method"], self._route_template(scope))
            await internal_error()(scope, receive, send_with_id)
        finally:
            try:
                self._record(scope, status, time.perf_counter() - started)
            finally:
                REQUEST_ID.reset(context)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope["method"]
        route = self._route_template(scope)
        self.metrics().observe_request(method, route, status, seconds)
        if self.access_log and ACCESS_LOGGER.isEnabledFor(logging.INFO):
            state = scope.get("state", {})
            user_id = state.get("user_id")
            refused = state.get(AUTH_FAILURE)
            extra = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "user": None if user_id is None else self.user_id_hasher()(user_id),
            }
            if refused is None:
                ACCESS_LOGGER.info("%s %s %d %.1f ms", method, route, status, seconds * 1000, extra=extra)
            else:
                ACCESS_LOGGER.info(
                    "%s %s %d %.1f ms (%s)",
                    method,
                    route,
                    status,
                    seconds * 1000,
                    refused,
                    extra={**extra, AUTH_FAILURE: refused},
                )

    def _route_template(self, scope: Scope) -> str:
        route = scope.get("route")
        template = getattr(route, "path_format", None)
        if isinstance(template, str):
            return template
        # Answered before routing (no token: 401; too large: 413) or by no route (404): match the
        # templates as the router would, which only such requests pay for.
        if self._templates is None:
            self._templates = _templates(self.router.routes, "")
        path = _route_path(scope)
        return next((template for pattern, template in self._templates if pattern.match(path)), UNMATCHED_ROUTE)


def _templates(routes: Iterable[BaseRoute], prefix: str) -> list[tuple[re.Pattern[str], str]]:
    """The path patterns and templates of every route, in the router's order, routers included by
    FastAPI (which match lazily, through private state) opened up."""
    found: list[tuple[re.Pattern[str], str]] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _templates(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount):
            pattern, template, _ = compile_path(prefix + route.path + "/{path:path}")
            found.append((pattern, template))
        elif isinstance(route, Route):
            pattern, template, _ = compile_path(prefix + route.path)
            found.append((pattern, template))
    return found


#: The key, in `scope["state"]` and in the request's log line, of why its credential was refused.
AUTH_FAILURE = "auth_failure"


def _auth_failure(error: DomainError) -> str:
    """Why a request was not let in, as its log line says it."""
    if isinstance(error, AuthenticationFailed):
        return error.problem.value
    if isinstance(error, IdentityUnavailable):
        return "keys_unavailable"
    return "subject_not_path_user" if isinstance(error, Forbidden) else type(error).__name__


class BearerAuthentication:
    """Admit a request under /api/{user_id}/ only with a bearer token for that very user, and one
    to /mcp with a valid bearer token (its 401 names the resource metadata, as the MCP
    authorization spec asks).

    It runs before routing and before anything reads the body, so a caller without a valid
    token learns nothing (not even whether its JSON parses) and costs no more than the check.
    The verified user id is left in `scope["state"]["user_id"]` for the routes, and the instant
    the token stops being accepted in `scope["state"]["token_valid_until"]` (for what must not
    outlive the token: an event stream).
    """

    def __init__(self, app: ASGIApp, verifier: Callable[[], IdentityVerifier], public_url: str | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.public_url = public_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) == MCP_PATH and not is_preflight(scope):
            await self._admit_to_mcp(scope, receive, send)
            return
        if scope["type"] != "http" or not _route_path(scope).startswith(API_PREFIX) or is_preflight(scope):
            # A preflight (from an origin CrossOrigin does not allow, or when none is) goes on to
            # the routes: 405 or 404, never 401, for a request that is never asked for a token.
            await self.app(scope, receive, send)
            return
        try:
            identity = await self._authorized(scope)
        except DomainError as error:
            scope.setdefault("state", {})[AUTH_FAILURE] = _auth_failure(error)
            await domain_problem(error)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user_id"] = identity.user_id
        state["token_valid_until"] = identity.valid_until
        await self.app(scope, receive, send)

    async def _admit_to_mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            identity = await self._identified(scope)
        except DomainError as error:
            response = domain_problem(error)
            if isinstance(error, AuthenticationFailed):
                metadata = public_base_of(scope, self.public_url) + RESOURCE_METADATA_PATH
                # Added to the challenge the API answers with, whatever its parameters (RFC 9728, 5.1).
                challenge = response.headers["WWW-Authenticate"].strip()
                separator = " " if challenge.lower() == "bearer" else ", "
                response.headers["WWW-Authenticate"] = f'{challenge}{separator}resource_metadata="{metadata}"'
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user_id"] = identity.user_id
        state["token_valid_until"] = identity.valid_until
        await self.app(scope, receive, send)

    async def _identified(self, scope: Scope) -> Identity:
        authorization = _header(scope, b"authorization")
        token = bearer_token(authorization)
        if token is None:
            # `Bearer` and nothing after it is a broken credential; none at all, or one of another
            # scheme, is no bearer credential (RFC 6750 §3.1: a challenge without an error code).
            said_bearer = authorization.partition(" ")[0].lower() == "bearer"
            raise AuthenticationFailed(CredentialProblem.MALFORMED if said_bearer else CredentialProblem.MISSING)
        return await self.verifier().identify(token)

    async def _authorized(self, scope: Scope) -> Identity:
        identity = await self._identified(scope)
        if identity.user_id != _route_path(scope)[len(API_PREFIX) :].split("/", 1)[0]:
            raise Forbidden("the token's subject is not the user in the path")
        return identity


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


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
