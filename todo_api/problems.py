"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from todo_api.exports import EXPORT_RETRY_AFTER_SECONDS, ExportRunning
from todo_core.errors import (
    AuthenticationFailed,
    BatchOperationFailed,
    Conflict,
    CredentialProblem,
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    IdentityUnavailable,
    InvalidCursor,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    SchemaMissing,
    StorageUnavailable,
    SyncExpired,
    TooManyCalendarFeeds,
    TooManyEventStreams,
    TooManyTasks,
    TooManyWebhooks,
    UserBusy,
    ValidationFailed,
)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = "2"
#: A user's own writes queued: by the time the client retries, the queue has moved on.
BUSY_RETRY_AFTER_SECONDS = "1"

#: Where a write refused because its user's own writes piled up (429 `user-busy`) is logged.
logger = logging.getLogger("todo_api.limits")


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem detail. Its `type` resolves to a page that explains it."""

    type: str = Field(json_schema_extra={"format": "uri-reference"}, examples=["/problems/validation-error"])
    title: str = Field(description="The HTTP status's phrase")
    status: int
    detail: str = Field(description="What went wrong, for a person")
    errors: list[FieldProblem] | None = Field(
        None, description="With `validation-error` and `batch-failed`: each broken rule, by the path of its field"
    )
    operation: int | None = Field(
        None, description="With `batch-failed`: the index (from 0) of the operation that failed"
    )
    problem: Problem | None = Field(
        None, description="With `batch-failed`: the problem the failed operation alone would have answered with"
    )


# Domain error → (status, problem type). Looked up along the exception's class hierarchy.
_DOMAIN_STATUSES: dict[type[DomainError], tuple[int, str]] = {
    ValidationFailed: (422, "validation-error"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    PreconditionFailed: (412, "precondition-failed"),
    InvalidCursor: (400, "invalid-cursor"),
    InvalidSyncToken: (400, "invalid-sync-token"),
    SyncExpired: (410, "sync-expired"),
    IdempotencyKeyReused: (422, "idempotency-key-reused"),
    AuthenticationFailed: (401, "invalid-token"),
    Forbidden: (403, "forbidden"),
    StorageUnavailable: (503, "unavailable"),
    UserBusy: (429, "user-busy"),
    TooManyTasks: (409, "too-many-tasks"),
    TooManyCalendarFeeds: (409, "too-many-calendar-feeds"),
    TooManyWebhooks: (409, "too-many-webhooks"),
    TooManyEventStreams: (429, "too-many-event-streams"),
    SchemaMissing: (503, "not-migrated"),
    IdentityUnavailable: (503, "auth-unavailable"),
    ExportRunning: (429, "export-running"),
}
#: Said by `/readyz` and by every request while the database has no schema.
NOT_MIGRATED_DETAIL = "The database has no schema yet: the operator must run `todo migrate`."
# What a client may be told, by problem type; the rest of an error's text stays in the server.
_PUBLIC_DETAIL: dict[str, str] = {
    "forbidden": "This token does not grant access to this user's resources.",
    "unavailable": "The service cannot reach its database right now; retry shortly.",
    "not-migrated": NOT_MIGRATED_DETAIL,
    "auth-unavailable": "The identity provider's keys cannot be fetched right now, so the token could not be "
    "checked; retry shortly (the token may well be valid).",
}
# Why a credential was refused, in words that are also its challenge's `error_description`:
# RFC 6750 §3 allows no `"` or `\` there. The credential itself is never repeated.
_CREDENTIAL_DETAIL: dict[CredentialProblem, str] = {
    CredentialProblem.MISSING: "No bearer token: send the header `Authorization: Bearer <token>`.",
    CredentialProblem.MALFORMED: "The bearer token is malformed: a JWT is three base64url parts "
    "(header.payload.signature), the first two JSON objects.",
    CredentialProblem.ALGORITHM_NOT_ALLOWED: "The token's algorithm (alg) is not allowed: only the algorithm "
    "of the key that should have signed it is accepted, never none.",
    CredentialProblem.UNKNOWN_KEY: "The token's key id (kid) is missing or names no key the identity provider "
    "publishes.",
    CredentialProblem.BAD_SIGNATURE: "The token's signature does not verify: it was altered, or signed with "
    "another key.",
    CredentialProblem.EXPIRED: "The token expired at {at}.",
    CredentialProblem.NOT_YET_VALID: "The token is not valid before {at}.",
    CredentialProblem.WRONG_ISSUER: "The token's issuer (iss) is missing or not the one this service trusts.",
    CredentialProblem.WRONG_AUDIENCE: "The token's audience (aud) is missing or does not name this service.",
    CredentialProblem.MISSING_CLAIM: "The token has no {claim} claim, which every token must have.",
    CredentialProblem.NO_USER: "The token's {claim} claim names no user: it is missing, blank, too long or "
    "not a string.",
    CredentialProblem.NOT_RECOGNISED: "The bearer token is not the one this endpoint accepts.",
}


class BodyTooLarge(StarletteHTTPException):
    """The request body is over the configured limit.

    An HTTP exception, because FastAPI turns any other exception raised while it reads a
    body into a 400: a streamed (chunked) body over the limit must still be a 413.
    """

    def __init__(self) -> None:
        super().__init__(413)


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = _problem_body(status, slug, detail, errors)
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _problem_body(status: int, slug: str, detail: str, errors: list[dict[str, str]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    if isinstance(error, UserBusy):
        user_id = request.scope.get("state", {}).get("user_id")
        hashed = None if user_id is None else request.app.state.container.user_id_hasher()(user_id)
        logger.warning(
            "write refused with 429: user %s has more writes running at once than the database can take "
            "one after the other (%s)",
            hashed,
            error,
            extra={"user": hashed},
        )
    elif isinstance(error, StorageUnavailable):
        # The client is told only to retry; the log says why (the driver's error, by its class).
        cause = error.__cause__
        logger.warning(
            "answered 503: %s (%s: %s)", error, type(cause).__name__, str(cause).strip().split("\n")[0][:200]
        )
    return domain_problem(error)


def domain_problem(error: DomainError) -> Response:
    """The problem response for a domain error."""
    if isinstance(error, BatchOperationFailed):
        return _batch_problem(error)
    status, slug = next(_DOMAIN_STATUSES[kind] for kind in type(error).__mro__ if kind in _DOMAIN_STATUSES)
    headers: dict[str, str] = {}
    errors = None
    detail = _PUBLIC_DETAIL.get(slug, str(error))
    if isinstance(error, AuthenticationFailed):
        detail = credential_detail(error)
        headers["WWW-Authenticate"] = bearer_challenge(error, detail)
    elif isinstance(error, IdentityUnavailable):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    elif isinstance(error, StorageUnavailable):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    elif isinstance(error, UserBusy | TooManyEventStreams):
        headers["Retry-After"] = BUSY_RETRY_AFTER_SECONDS
    elif isinstance(error, ExportRunning):
        headers["Retry-After"] = str(EXPORT_RETRY_AFTER_SECONDS)
    elif isinstance(error, PreconditionFailed):
        headers["ETag"] = f'"{error.current_version}"'
    elif isinstance(error, ValidationFailed):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
    return problem_response(status, slug, detail, errors=errors, headers=headers)


def credential_detail(error: AuthenticationFailed) -> str:
    """Why the credential was refused, for the caller (and the challenge's `error_description`)."""
    at = "an instant it names" if error.at is None else error.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _CREDENTIAL_DETAIL[error.problem].format(at=at, claim=error.claim or "sub")


def bearer_challenge(error: AuthenticationFailed, detail: str) -> str:
    """`WWW-Authenticate` for a refused credential (RFC 6750 §3): without an error code when the
    request carried no bearer token at all (§3.1), else `invalid_token` and why."""
    if error.problem is CredentialProblem.MISSING:
        return "Bearer"
    return f'Bearer error="invalid_token", error_description="{detail}"'


# The fields of a batch operation itself; any other field a failed operation names is in its body.
BATCH_OPERATION_FIELDS = frozenset({"op", "id", "ref", "body", "if_match"})


def _batch_problem(failed: BatchOperationFailed) -> Response:
    """`batch-failed`, with the status of the operation's own problem, which it carries whole
    (`problem`), and that problem's field errors again by their paths in the batch."""
    own = orjson.loads(domain_problem(failed.error).body)
    status: int = own["status"]
    index = failed.index
    detail = f"Operation {index} failed ({own['detail']}), so no operation of the batch was applied."
    errors = None
    if "errors" in own:
        errors = [{"field": _batch_path(index, e["field"]), "message": e["message"]} for e in own["errors"]]
    body = {**_problem_body(status, "batch-failed", detail, errors), "operation": index, "problem": own}
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE)


def _batch_path(index: int, field: str) -> str:
    """The path in a batch of a field that a failed operation names as the single route would."""
    name = re.split(r"[.\[]", field, maxsplit=1)[0]
    return f"operations[{index}].{field}" if name in BATCH_OPERATION_FIELDS else f"operations[{index}].body.{field}"


def _request_validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return _malformed_json()
    errors = [
        {"field": field_path(problem["loc"][1:]) or str(problem["loc"][0]), "message": _without_prefix(problem["msg"])}
        for problem in problems
    ]
    return problem_response(422, "validation-error", "The request does not have the expected shape.", errors=errors)


def field_path(location: Sequence[int | str]) -> str:
    """A field's path as a client writes it: `operations[3].body.tags[0]`."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def field_errors(error: ValidationError) -> list[FieldError]:
    """pydantic's errors, each named and worded as a 422 names and words it."""
    return [FieldError(field_path(problem["loc"]), _without_prefix(problem["msg"])) for problem in error.errors()]


def _malformed_json() -> Response:
    detail = "The request body is not valid JSON: it does not parse, is not UTF-8, or nests too deeply."
    return problem_response(400, "malformed-json", detail)


def _without_prefix(message: str) -> str:
    """A validation message as the client should read it: pydantic prefixes the messages of
    plain `ValueError`s with "Value error, "."""
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.__cause__ is not None:
        # FastAPI's answer to a body it could not parse (not UTF-8, nested too deeply): to the
        # client, as unparsable as any other JSON that is not.
        return _malformed_json()
    detail = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
    slug = HTTPStatus(error.status_code).phrase.lower().replace(" ", "-").replace("'", "")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette names only the methods of the first route on the path; a path served by
        # several routes (GET and POST /tasks) allows them all.
        headers["Allow"] = ", ".join(_allowed_methods(request.app, request.url.path)) or headers.get("Allow", "")
    return problem_response(error.status_code, slug, detail, headers=headers)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    for template, methods in _path_methods(app):
        if template.fullmatch(path):
            return methods
    return []


def _path_methods(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    cached: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "path_methods", None)
    if cached is None:
        cached = [
            (re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path))), sorted(m.upper() for m in operations))
            for path, operations in app.openapi().get("paths", {}).items()
        ]
        app.state.path_methods = cached
    return cached


def unsupported_media_type(accepted: tuple[str, ...]) -> Response:
    listed = " or ".join(f"`Content-Type: {media_type}`" for media_type in accepted)
    return problem_response(415, "unsupported-media-type", f"Send the body as JSON, with {listed}.")


def body_too_large() -> Response:
    return problem_response(413, "body-too-large", "The request body is larger than this service accepts.")


def _body_too_large(_: Request, __: Exception) -> Response:
    return body_too_large()


def internal_error() -> Response:
    """The answer to a failure of ours: the client learns nothing of it (the traceback goes to
    the server's log)."""
    return problem_response(500, "internal-error", "Something went wrong on our side.")


def _unexpected(_: Request, __: Exception) -> Response:
    return internal_error()


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems a route can answer with."""
    return {status: {"model": Problem, "description": HTTPStatus(status).phrase} for status in statuses}
