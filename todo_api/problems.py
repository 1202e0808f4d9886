"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

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
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    StorageUnavailable,
    SyncExpired,
    ValidationFailed,
)

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = "2"


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
    ExportRunning: (429, "export-running"),
}
# What a client may be told; the rest of an error's text stays in the server.
_PUBLIC_DETAIL: dict[int, str] = {
    401: "A valid bearer token is required.",
    403: "This token does not grant access to this user's resources.",
    503: "The service cannot reach its database right now; retry shortly.",
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


def _domain_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    return domain_problem(error)


def domain_problem(error: DomainError) -> Response:
    """The problem response for a domain error."""
    if isinstance(error, BatchOperationFailed):
        return _batch_problem(error)
    status, slug = next(_DOMAIN_STATUSES[kind] for kind in type(error).__mro__ if kind in _DOMAIN_STATUSES)
    headers: dict[str, str] = {}
    errors = None
    if isinstance(error, AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif isinstance(error, StorageUnavailable):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    elif isinstance(error, ExportRunning):
        headers["Retry-After"] = str(EXPORT_RETRY_AFTER_SECONDS)
    elif isinstance(error, PreconditionFailed):
        headers["ETag"] = f'"{error.current_version}"'
    elif isinstance(error, ValidationFailed):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
    detail = _PUBLIC_DETAIL.get(status, str(error))
    return problem_response(status, slug, detail, errors=errors, headers=headers)


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
