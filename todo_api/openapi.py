"""The OpenAPI document as front ends meet it: what FastAPI derives from the routes, completed
with what it cannot know.

- every operation has a stable, readable `operationId` (`listTasks`, `completeTask`);
- every header the service sends is documented where it is sent (`ETag`, `Location`, `Link` on
  every list, `WWW-Authenticate`, `Retry-After`, `Idempotent-Replayed`, and `X-Request-ID` on
  every response);
- every operation may answer 422 (an unknown query parameter: `ApiRoute`);
- every error response is `application/problem+json` and lists the problem `type`s it can carry;
- PATCH bodies are JSON merge patches (`application/merge-patch+json`, or `application/json`);
- a request body's defaults are said in words, not as `default`, which generators read as
  "always present" (openapi-typescript would make a client send every one of them);
- the bearer token is required on every /api/ operation, and on no other (`security: []`);
- links lead from a returned resource to the operations on it.

Each step is derived from the routes and the registries (`problem_types.py`), never listed
per route, so a new route is documented like the others.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from fastapi.routing import APIRoute

from todo_api.middleware import API_PREFIX
from todo_api.problem_types import types_with_status
from todo_api.problems import MEDIA_TYPE
from todo_api.rate_limits import FEEDS_PREFIX

PROBLEM_MEDIA_TYPE = MEDIA_TYPE
MERGE_PATCH_MEDIA_TYPE = "application/merge-patch+json"

DESCRIPTION = """\
A task service for web and mobile front ends. Every user owns their tasks and categories;
nobody else sees, changes or learns of them.

Every `/api/{user_id}/…` request carries `Authorization: Bearer <JWT>` for that very user
(Better Auth's JWT plugin, or your own). Errors are RFC 9457 problem details: their `type`
resolves to a page that says what to do (`/problems`).

**How to get a token.** In development (`make run`), the server printed one for `demo-user`
when it started (`export TOKEN=…`), and this page is already authorised as `demo-user`: *Try it
out* works at once, with `demo-user` as the `user_id`. A token for any other user:
`TODO_DEV_MODE=1 todo token USER_ID` (or, with `TODO_JWT_SECRET` set, `todo token USER_ID`), then
*Authorize* and paste it. In production, tokens come from your identity provider (Better Auth:
`authClient.token()`); this page then has none until you paste one.

Every response carries `X-Request-ID`: the request's own `X-Request-ID` when it sent one of 1 to
128 letters, digits or `._:=+/@-`, else a new one. The server's log lines name it: quote it when
reporting a problem.
"""

TAGS = [
    {"name": "tasks", "description": "A user's tasks: list, filter, page, create, change, complete, delete."},
    {"name": "categories", "description": "A user's categories (names unique per user in any letter case)."},
    {
        "name": "settings",
        "description": "A user's settings: the time zone a new task takes when it names none (`UTC` until saved).",
    },
    {
        "name": "portability",
        "description": "All of a user's data as one JSON document (`GET /export`), and back into any "
        "account (`POST /import`).",
    },
    {"name": "sync", "description": "For clients that keep a copy: what changed since a token, and live events."},
    {
        "name": "calendar",
        "description": "The tasks as an RFC 5545 calendar, and secret subscription links for calendar apps.",
    },
    {
        "name": "webhooks",
        "description": "Endpoints that receive the user's events, signed per Standard Webhooks (see docs/webhooks.md).",
    },
    {"name": "account", "description": "Everything the service holds for a user: erasing it."},
    {"name": "health", "description": "Probes for load balancers and orchestrators (no token)."},
]

_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'The resource\'s current version, e.g. `"3"`: send it as `If-Match` to change only that version',
        "schema": {"type": "string"},
    },
    "Location": {"description": "The URL of the resource created", "schema": {"type": "string"}},
    "WWW-Authenticate": {
        "description": "RFC 6750 §3: `Bearer` when the request carried no bearer token; otherwise "
        '`Bearer error="invalid_token", error_description="<why>"`, where <why> is the problem\'s `detail` '
        "(expired, and when; not yet valid; bad signature; unknown key id; wrong issuer or audience; "
        "malformed; algorithm not allowed). The token is never repeated",
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}},
    "RateLimit-Policy": {
        "description": "The per-user limits (IETF draft-ietf-httpapi-ratelimit-headers-10), e.g. "
        '`"30/second";q=30;w=1, "1200/minute";q=1200;w=60`: `q` requests per `w` seconds',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'Where the user stands against the limit closest to running out, e.g. `"30/second";r=12;t=1`: '
        "`r` requests remain, for `t` more seconds",
        "schema": {"type": "string"},
    },
    "X-Request-ID": {
        "description": "The request's id in the server's logs: the request's own `X-Request-ID` "
        "(1 to 128 of `A-Za-z0-9._:=+/@-`), else a new one",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The next page of the list (RFC 8288): `<URL>; rel="next"`, an absolute URL with the '
        "request's own query and the next `cursor`. Absent on the last page (a list that is not paged is one "
        "page): follow it until it is gone",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` on the answer to a retry with an `Idempotency-Key` already used: "
        "this is the first request's answer, and nothing changed",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_PROBLEM = "#/components/schemas/Problem"
_VERSIONED = ("#/components/schemas/TaskRead", "#/components/schemas/CategoryRead")


def operation_id(route: APIRoute) -> str:
    """A route's `operationId`: its function's name in camelCase (`complete_task` → `completeTask`)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def shaped(document: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI made, completed (see the module's docstring)."""
    document.setdefault("components", {})["headers"] = _HEADERS
    document["servers"] = [{"url": "/", "description": "This server"}]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _secure(path, operation)
            if path.startswith((API_PREFIX, FEEDS_PREFIX)):  # see todo_api/rate_limits.py
                limited = {"description": "Too Many Requests", "content": {MEDIA_TYPE: {}}}
                operation["responses"].setdefault("429", limited)
            if "requestBody" in operation:
                problem = {"description": "Unsupported Media Type", "content": {MEDIA_TYPE: {}}}
                operation["responses"].setdefault("415", problem)
            # `ApiRoute` refuses an unknown query parameter on every route.
            unknown_query = {"description": HTTPStatus(422).phrase, "content": {MEDIA_TYPE: {}}}
            operation["responses"].setdefault("422", unknown_query)
            _document_responses(operation)
            if method == "patch":
                _accept_merge_patch(operation)
            _describe_request_defaults(operation, document["components"].get("schemas", {}))
    return _document_links(_with_bearer_scheme(document))


def _secure(path: str, operation: dict[str, Any]) -> None:
    # `Authentication` checks the token before routing, so no route declares it as a
    # dependency (which would parse it again): the document says it here.
    operation["security"] = [{"HTTPBearer": []}] if path.startswith(API_PREFIX) else []


def _with_bearer_scheme(document: dict[str, Any]) -> dict[str, Any]:
    document["components"].setdefault("securitySchemes", {})["HTTPBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from Better Auth, or `todo token USER_ID` (`make run` prints one for `demo-user`)",
    }
    return document


def _document_responses(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _header("X-Request-ID")
        content = response.get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        if status[0] in "45" and (schema.get("$ref") == _PROBLEM or PROBLEM_MEDIA_TYPE in content):
            content[PROBLEM_MEDIA_TYPE] = {"schema": _problem_schema(int(status), operation.get("operationId"))}
            content.pop("application/json", None)
        if schema.get("$ref") in _VERSIONED or status == "412":
            headers["ETag"] = _header("ETag")
        if status == "201" and schema.get("$ref") in _VERSIONED:  # one resource made (an import makes many)
            headers["Location"] = _header("Location")
        if status == "200" and schema.get("type") == "array":  # a list: each pages with `Link`
            headers["Link"] = _header("Link")
        if status == "401":
            headers["WWW-Authenticate"] = _header("WWW-Authenticate")
        if status in ("429", "503"):
            headers["Retry-After"] = _header("Retry-After")
        if status == "429":
            headers["RateLimit-Policy"] = _header("RateLimit-Policy")
            headers["RateLimit"] = _header("RateLimit")
    if any(parameter.get("name") == "Idempotency-Key" for parameter in operation.get("parameters", [])):
        for status in ("200", "201"):
            if status in operation["responses"]:
                operation["responses"][status].setdefault("headers", {})["Idempotent-Replayed"] = _header(
                    "Idempotent-Replayed"
                )


def _describe_request_defaults(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    # A new task's `description`, `completed` and `priority` have defaults: with `default` in
    # the document, a front end's types would require them.
    for media in operation.get("requestBody", {}).get("content", {}).values():
        reference = media.get("schema", {}).get("$ref", "")
        schema = schemas.get(reference.removeprefix("#/components/schemas/"), {})
        for field in schema.get("properties", {}).values():
            if "default" in field:
                said = f"Default: `{json.dumps(field.pop('default'))}`."
                described = field.get("description", "").rstrip(".")
                field["description"] = f"{described}. {said}" if described else said


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _problem_schema(status: int, operation_id: str | None) -> dict[str, Any]:
    """The problem schema, its `type` narrowed to the types a response of this status (of this
    operation) carries."""
    types = [problem.uri for problem in types_with_status(status, operation_id)]
    narrowed: dict[str, Any] = {"type": "string", "format": "uri-reference"}
    if types:
        narrowed["enum"] = types
    return {"allOf": [{"$ref": _PROBLEM}, {"type": "object", "properties": {"type": narrowed}, "required": ["type"]}]}


def _accept_merge_patch(operation: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        # The merge patch first: what the body is; plain JSON also accepted.
        content[MERGE_PATCH_MEDIA_TYPE] = content["application/json"]
        content["application/json"] = content.pop("application/json")


_ITEM_PATH = re.compile(r"(?P<collection>.+)/\{(?P<key>[^/{}]+)\}")
_PATH_PARAMETER = re.compile(r"\{([^/{}]+)\}")


def _document_links(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add OpenAPI links from a resource in a response to what can be done with it next.

    Derived from the path templates: for an item path `C/{key}` whose collection `C` has a
    POST, every success response carrying a resource (one with an `id`) of that POST, of the
    item's operations and of those under `C/{key}/` links to each of these operations, with
    `key` taken from the response's `id` and the other path parameters from the request.
    Clients (and schemathesis's stateful tests) learn that the `id` of a created task is the
    `task_id` of its GET, PUT, PATCH, DELETE and complete.
    """
    paths: dict[str, dict[str, Any]] = openapi.get("paths", {})
    schemas: dict[str, Any] = openapi.get("components", {}).get("schemas", {})
    for item_path in paths:
        matched = _ITEM_PATH.fullmatch(item_path)
        if matched is None or "post" not in paths.get(matched["collection"], {}):
            continue
        names = _PATH_PARAMETER.findall(item_path)
        key = matched["key"]
        parameters = {name: "$response.body#/id" if name == key else f"$request.path.{name}" for name in names}
        # Only paths with no parameter of their own: the request and the response name all of theirs.
        item_operations = [
            operation
            for path, operations in paths.items()
            if (path == item_path or path.startswith(f"{item_path}/")) and _PATH_PARAMETER.findall(path) == names
            for operation in operations.values()
        ]
        for producer in [paths[matched["collection"]]["post"], *item_operations]:
            for status, response in producer.get("responses", {}).items():
                if status.startswith("2") and _carries_id(response, schemas):
                    response.setdefault("links", {}).update(
                        (target["operationId"], {"operationId": target["operationId"], "parameters": parameters})
                        for target in item_operations
                        if target is not producer
                    )
    return openapi


def _carries_id(response: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether a response's JSON body is a resource with an `id`."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        schema = schemas.get(reference.removeprefix("#/components/schemas/"), {})
    return "id" in schema.get("properties", {})
