"""The one ASGI middleware every request goes through: its id, metrics and log line;
authentication of /api/ and /mcp requests; the per-user rate limits; a cap on body size."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable

from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.cross_origin import is_preflight
from todo_api.logs import ACCESS_LOGGER, REQUEST_ID, UserIdHasher, request_id
from todo_api.metrics import UNMATCHED_ROUTE, Metrics
from todo_api.problems import BodyTooLarge, body_too_large, domain_problem, internal_error
from todo_api.rate_limits import RateLimiting
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


class RequestPipeline:
    """Everything a request meets before its route, in one pass (one layer, one wrapper of
    `send`), in this order:

    1. Its id, `X-Request-ID`: the client's when it sent a safe one, else a new one. It is sent
       back in the response and stamped on every log record made while the request runs.
    2. Authentication (`Authentication`): a request under /api/{user_id}/ needs a bearer token
       for that user, one to /mcp any valid token; otherwise 401 or 403 before anything reads the
       body.
    3. The per-user rate limits (`RateLimiting`, todo_api/rate_limits.py): 429 beyond them, and
       `RateLimit` headers on every limited answer.
    4. The cap on body size (`BodySizeLimit`): 413 by `Content-Length` up front or while the
       body streams.

    When it is answered, the request is counted and timed by route template
    (`/api/{user_id}/tasks`, never the path itself, which holds user ids) and status, and, with
    `access_log`, logged in one line with the user's id hashed (never the token), and why a
    credential was refused (`auth_failure`).

    One layer instead of four: each ASGI layer costs a call, a closure and a copy of the
    response's start message per request, and these four do nothing but pass the request on
    when it is let in (`python -m bench.layers` measures what each costs).
    """

    def __init__(
        self,
        app: ASGIApp,
        router: Router,
        metrics: Callable[[], Metrics],
        user_id_hasher: Callable[[], UserIdHasher],
        access_log: bool,
        authentication: Authentication,
        rate_limiting: RateLimiting,
        body_size: BodySizeLimit,
    ) -> None:
        self.app = app
        self.router = router
        self.metrics = metrics
        self.user_id_hasher = user_id_hasher
        self.access_log = access_log
        self.authentication = authentication
        self.rate_limiting = rate_limiting
        self.body_size = body_size
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
        #: What every answer gets: the rate limits' headers (once known), then the request id.
        added = [(b"x-request-id", identifier.encode())]
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        context = REQUEST_ID.set(identifier)
        try:
            path = route_path(scope)
            refusal = await self.authentication.refusal(scope, path)
            if refusal is None:
                refusal, limits = await self.rate_limiting.check(scope, path)
                added[:0] = limits
            if refusal is None:
                refusal, receive = self.body_size.limited(scope, path, receive)
            if refusal is not None:
                await refusal(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
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
            await internal_error()(scope, receive, send_with_headers)
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
        path = route_path(scope)
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


class Authentication:
    """Admit a request under /api/{user_id}/ only with a bearer token for that very user, and one
    to /mcp with a valid bearer token (its 401 names the resource metadata, as the MCP
    authorization spec asks).

    It runs before routing and before anything reads the body, so a caller without a valid
    token learns nothing (not even whether its JSON parses) and costs no more than the check.
    The verified user id is left in `scope["state"]["user_id"]` for the routes, and the instant
    the token stops being accepted in `scope["state"]["token_valid_until"]` (for what must not
    outlive the token: an event stream).
    """

    def __init__(self, verifier: Callable[[], IdentityVerifier], public_url: str | None = None) -> None:
        self.verifier = verifier
        self.public_url = public_url

    async def refusal(self, scope: Scope, path: str) -> Response | None:
        """The 401 or 403 that answers the request, or None: it may go on (verified, or asking
        for something that needs no token). `path` is the one the router matches."""
        if path == MCP_PATH and not is_preflight(scope):
            return await self._mcp_refusal(scope)
        if not path.startswith(API_PREFIX) or is_preflight(scope):
            # A preflight (from an origin CrossOrigin does not allow, or when none is) goes on to
            # the routes: 405 or 404, never 401, for a request that is never asked for a token.
            return None
        try:
            identity = await self._identified(scope)
            if identity.user_id != path[len(API_PREFIX) :].split("/", 1)[0]:
                raise Forbidden("the token's subject is not the user in the path")
        except DomainError as error:
            scope.setdefault("state", {})[AUTH_FAILURE] = _auth_failure(error)
            return domain_problem(error)
        _admit(scope, identity)
        return None

    async def _mcp_refusal(self, scope: Scope) -> Response | None:
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
            return response
        _admit(scope, identity)
        return None

    async def _identified(self, scope: Scope) -> Identity:
        authorization = _header(scope, b"authorization")
        token = bearer_token(authorization)
        if token is None:
            # `Bearer` and nothing after it is a broken credential; none at all, or one of another
            # scheme, is no bearer credential (RFC 6750 §3.1: a challenge without an error code).
            said_bearer = authorization.partition(" ")[0].lower() == "bearer"
            raise AuthenticationFailed(CredentialProblem.MALFORMED if said_bearer else CredentialProblem.MISSING)
        return await self.verifier().identify(token)


def _admit(scope: Scope, identity: Identity) -> None:
    state = scope.setdefault("state", {})
    state["user_id"] = identity.user_id
    state["token_valid_until"] = identity.valid_until


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header's value, or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def route_path(scope: Scope) -> str:
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

    def __init__(self, max_bytes: int, max_import_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_import_bytes = max_bytes if max_import_bytes is None else max_import_bytes

    def limited(self, scope: Scope, path: str, receive: Receive) -> tuple[Response | None, Receive]:
        """The 413 that answers a request whose declared body is too large, or None and a
        `receive` that raises BodyTooLarge once the body streamed past the limit."""
        max_bytes = self.max_import_bytes if _is_import(path) else self.max_bytes
        declared = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value  # the last one, as a dict of the headers would keep
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            return body_too_large(), receive
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge()
            return message

        return None, counted_receive


def _is_import(path: str) -> bool:
    """Whether the request is an import: `/api/{user_id}/import` (a user id holds no `/`)."""
    return path.startswith(API_PREFIX) and path.endswith(IMPORT_SUFFIX) and path.count("/") == 3
