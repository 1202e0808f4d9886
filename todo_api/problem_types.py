"""Every kind of problem the service answers with: its `type` (`/problems/<name>`), status,
what it means and what a client should do. The OpenAPI document lists each response's types
from here, and `GET /problems/<name>` explains each one (RFC 9457: dereferenceable types).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProblemType:
    name: str
    status: int
    meaning: str
    remedy: str
    #: Other statuses a problem of this type can come with (a failed batch has its operation's).
    other_statuses: tuple[int, ...] = ()
    #: The only operations (by `operationId`) that answer with it; empty: any operation.
    only_in: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"/problems/{self.name}"


_TYPES = (
    ProblemType(
        "malformed-json",
        400,
        "The request body is not JSON: it does not parse, is not UTF-8, or nests too deeply.",
        "Send a JSON document encoded as UTF-8. Do not repeat the request unchanged.",
    ),
    ProblemType(
        "invalid-cursor",
        400,
        "The page cursor was not issued for this list: it was altered, or the filters or sort changed.",
        "Send `cursor` with exactly the `sort` and filters of the request that returned it, or start "
        "again from the first page without a cursor.",
    ),
    ProblemType(
        "invalid-sync-token",
        400,
        "The sync token (`since`) was not issued by this service for this user, or was altered.",
        "Sync again from a snapshot: `GET /api/{user_id}/changes` without `since`, and replace the local copy.",
    ),
    ProblemType(
        "invalid-token",
        401,
        "No bearer token, or one that cannot be trusted. `detail` says which, in the words the "
        "`WWW-Authenticate` header's `error_description` also carries: no token (then the challenge is "
        "plain `Bearer`, RFC 6750 §3.1), malformed, an algorithm not allowed, an unknown key id, a bad "
        "signature, expired (and when), not yet valid (and from when), the wrong issuer or audience, a "
        "required claim missing, or no user named.",
        "Get a fresh token from the identity provider (Better Auth: `/api/auth/token`) and send it as "
        "`Authorization: Bearer <token>`. An expired token needs renewing; any other reason is a "
        "misconfiguration of the issuer or of `TODO_JWT_ISSUER` / `TODO_JWT_AUDIENCE`.",
    ),
    ProblemType(
        "forbidden",
        403,
        "The token is valid, but for another user than the `{user_id}` in the path.",
        "Use the id of the signed-in user (the token's `sub`) in the path.",
    ),
    ProblemType(
        "not-found",
        404,
        "There is no such resource for this user (whether it exists for someone else is never said), or no such path.",
        "Check the id; a resource deleted by another device is gone: drop it from the local copy.",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "The path exists, but not with this method.",
        "Use one of the methods in the `Allow` header.",
    ),
    ProblemType(
        "conflict",
        409,
        "The change clashes with the current state: a category of that name exists (in any letter case), "
        "or a concurrent change got there first.",
        "Choose another name, or read the resource again and retry.",
    ),
    ProblemType(
        "sync-expired",
        410,
        "The sync token is from before deletions the service no longer remembers (after "
        "`TODO_TOMBSTONE_DAYS`), or from a newer state than the service has (restored from a backup).",
        "Sync again from a snapshot: `GET /api/{user_id}/changes` without `since`, and replace the local copy.",
    ),
    ProblemType(
        "precondition-failed",
        412,
        "`If-Match` names a version that is no longer current: someone changed the resource since you read it.",
        "Read it again (the `ETag` header of this answer is the current version), reapply your change, and "
        "send it with the new `If-Match`.",
    ),
    ProblemType(
        "body-too-large",
        413,
        "The request body is larger than the service accepts (`TODO_MAX_BODY_BYTES`).",
        "Send less: a description or a batch is too long.",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "The request body is not declared as JSON.",
        "Send `Content-Type: application/json` (or `application/merge-patch+json` with PATCH).",
    ),
    ProblemType(
        "validation-error",
        422,
        "The request is well-formed but breaks a rule; `errors` names each field and what is wrong with it.",
        "Correct the fields listed in `errors`. Do not repeat the request unchanged.",
    ),
    ProblemType(
        "batch-failed",
        422,
        "An operation of a batch failed, so no operation of it was applied. `operation` is its index (from 0), "
        "`problem` is the problem the operation alone would have answered with, and the status is that "
        "problem's (404, 412 or 422); `errors` names each broken rule by its path in the batch "
        "(`operations[3].body.title`).",
        "Correct or drop the operation named by `operation` (see its `problem`) and send the batch again: "
        "nothing of it was applied.",
        other_statuses=(404, 412),
        only_in=("runBatch",),
    ),
    ProblemType(
        "idempotency-key-reused",
        422,
        "This `Idempotency-Key` came before with a different request (method, path or body).",
        "Use a new key for a new request; repeat a key only to retry the very same request.",
    ),
    ProblemType(
        "too-many-tasks",
        409,
        "The user has as many tasks as one user may have (`TODO_MAX_TASKS`, 100,000 by default; completed tasks "
        "count until deleted), or the creates of this batch or the tasks of this import would go past it. "
        "Nothing of the request was applied.",
        "Delete tasks you no longer need (completed ones first), then create again.",
        only_in=("createTask", "runBatch", "importAccount"),
    ),
    ProblemType(
        "too-many-calendar-feeds",
        409,
        "The user has as many calendar subscription links as one user may have (`TODO_MAX_CALENDAR_FEEDS`, "
        "20 by default).",
        "Revoke a link no calendar uses any more (`DELETE /api/{user_id}/calendar-feeds/{feed_id}`), then create "
        "one again.",
        only_in=("createCalendarFeed",),
    ),
    ProblemType(
        "too-many-webhooks",
        409,
        "The user has as many webhook endpoints as one user may have (`TODO_MAX_WEBHOOKS`, 10 by default).",
        "Delete an endpoint you no longer use (`DELETE /api/{user_id}/webhooks/{webhook_id}`), then create one again.",
        only_in=("createWebhook",),
    ),
    ProblemType(
        "rate-limited",
        429,
        "More requests for this user (for this calendar link, on `/feeds/`) than the service allows "
        "(`TODO_RATE_LIMITS`, `30/second;1200/minute` by default). `RateLimit-Policy` lists the limits and "
        "`RateLimit` says which one ran out (IETF draft-ietf-httpapi-ratelimit-headers).",
        "Wait the seconds in `Retry-After`, then go on more slowly; send many changes as one `POST "
        "/api/{user_id}/batch`.",
    ),
    ProblemType(
        "user-busy",
        429,
        "Too many of this user's own writes ran at once: each waits for the user's earlier ones, and this one "
        "waited longer than the service lets a write wait. Nobody else's writes are concerned, and nothing of "
        "this request was applied.",
        "Retry after the seconds in `Retry-After` (with the same `Idempotency-Key` for a create); send fewer "
        "writes at once, or many changes as one `POST /api/{user_id}/batch`.",
    ),
    ProblemType(
        "too-many-event-streams",
        429,
        "The user has as many event streams open as one user may (`TODO_MAX_EVENT_STREAMS` per server process, "
        "10 by default).",
        "Close a stream you no longer read (one per device is enough), then retry after `Retry-After`.",
        only_in=("streamChangeEvents",),
    ),
    ProblemType(
        "export-running",
        429,
        "An export of this account is being sent; an account has one export running at a time.",
        "Wait for the running export to finish (retry after the seconds in `Retry-After`).",
        only_in=("exportAccount",),
    ),
    ProblemType(
        "internal-error",
        500,
        "Something went wrong on the service's side. It is logged; nothing about it is disclosed.",
        "Retry later; if it persists, report it with the time of the request.",
    ),
    ProblemType(
        "unavailable",
        503,
        "The service cannot reach its database right now.",
        "Retry after the seconds in `Retry-After`. A create retried with the same `Idempotency-Key` is safe.",
    ),
    ProblemType(
        "not-migrated",
        503,
        "The database answers but its schema is missing or older than this version of the service needs: "
        "nobody has run `todo migrate` on it (since this version was deployed). `/readyz` says so too.",
        "An operator runs `todo migrate` (with the service's `TODO_DATABASE_URL`); until then every request "
        "fails the same way. Clients retry after the seconds in `Retry-After`.",
    ),
    ProblemType(
        "auth-unavailable",
        503,
        "The token could not be checked: the identity provider's keys (`TODO_JWKS_URL`) cannot be fetched "
        "right now and the token's key is not cached. The token was not refused and may well be valid. "
        "`/readyz` says so too while no key can be had.",
        "Keep the session and retry after the seconds in `Retry-After` (the keys are fetched again within a "
        "few seconds). Do not sign the user out.",
    ),
)

PROBLEM_TYPES: dict[str, ProblemType] = {problem.name: problem for problem in _TYPES}


def types_with_status(status: int, operation_id: str | None = None) -> list[ProblemType]:
    """The problem types a response of this status (of this operation, when named) can carry."""
    return [
        problem
        for problem in _TYPES
        if (status == problem.status or status in problem.other_statuses)
        and (operation_id is None or not problem.only_in or operation_id in problem.only_in)
    ]
