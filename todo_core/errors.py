"""Domain errors: what went wrong, in the user's terms. The API maps each type to a status."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule, named by the field it concerns (dotted for nested fields)."""

    field: str
    message: str


class ValidationFailed(DomainError):
    """A value breaks a rule of the domain (title too long, bad RRULE, unknown category...)."""

    def __init__(self, errors: list[FieldError] | FieldError) -> None:
        self.errors = errors if isinstance(errors, list) else [errors]
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls(FieldError(field, message))


class NotFound(DomainError):
    """The resource does not exist for this user. Never says whether it exists for another."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"{kind} not found")


class Conflict(DomainError):
    """The change clashes with the current state (a duplicate name, a concurrent write)."""


class PreconditionFailed(DomainError):
    """The client's `If-Match` version is not the current one."""

    def __init__(self, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(f"the current version is {current_version}")


class InvalidCursor(DomainError):
    """A page cursor that was not issued by us for this very query."""


class CredentialProblem(enum.Enum):
    """Why a bearer credential was refused, as a caller may be told it (the credential itself is
    never repeated)."""

    #: No credential at all: no `Authorization` header, or one of another scheme than Bearer.
    MISSING = "missing"
    #: Not a JWT: not three base64url parts of JSON objects, too long, a header field of the wrong type.
    MALFORMED = "malformed"
    #: `alg` is not one the service accepts, or not the one the key is bound to (`none`, confusion).
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    #: `kid` names no key the identity provider publishes.
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    #: A claim every token must have (`exp`) is absent.
    MISSING_CLAIM = "missing_claim"
    #: The user claim is absent, not a string, blank, too long or holds what no user id holds.
    NO_USER = "no_user"
    #: A well-formed credential that is simply not the one expected (a static token: /metrics).
    NOT_RECOGNISED = "not_recognised"


class AuthenticationFailed(DomainError):
    """No credential, or one that cannot be trusted. `problem` says why; `at` is the instant it
    concerns (when an expired token expired, from when a premature one is valid), `claim` the
    claim it concerns."""

    def __init__(self, problem: CredentialProblem, *, at: datetime | None = None, claim: str | None = None) -> None:
        self.problem = problem
        self.at = at
        self.claim = claim
        super().__init__(problem.value if claim is None else f"{problem.value} ({claim})")


class IdentityUnavailable(DomainError):
    """The keys to check a credential with cannot be had right now (the identity provider does not
    answer): the credential was not checked, and may well be valid. `retry_after` is how many
    seconds until the next attempt to fetch them."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"the identity provider's keys cannot be fetched; next attempt in {retry_after:.1f} s")


class Forbidden(DomainError):
    """A trusted caller asks for something that is not theirs to ask for."""


class StorageUnavailable(DomainError):
    """The store cannot be reached right now; the same request may succeed later."""


class SchemaMissing(StorageUnavailable):
    """The store answers but holds no schema (its tables were never made): an operator must
    migrate it before any request can succeed."""


class InvalidSyncToken(DomainError):
    """A sync token that was not issued by us for this user (mangled, forged, or another's)."""


class SyncExpired(DomainError):
    """The client's copy is too old to bring up to date: it must sync again from a snapshot."""


class IdempotencyKeyReused(DomainError):
    """An idempotency key sent again with a different request than the one it first came with."""


class BatchOperationFailed(DomainError):
    """One operation of a batch failed, so none of them was applied. Carries the operation's
    index (from 0) and its own error, as the operation alone would have raised it."""

    def __init__(self, index: int, error: DomainError) -> None:
        self.index = index
        self.error = error
        super().__init__(f"operation {index}: {error}")


class UserBusy(DomainError):
    """The user's own writes, running at once, are more than the store can take one after the
    other in time: this one waited too long for the user's earlier ones. Nobody else's writes are
    concerned; the same request may succeed in a moment."""


class QuotaExceeded(DomainError):
    """A per-user cap is reached: `limit` things of this kind at most."""

    def __init__(self, what: str, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} {what} per user")


class TooManyTasks(QuotaExceeded):
    def __init__(self, limit: int) -> None:
        super().__init__("tasks", limit)


class TooManyCalendarFeeds(QuotaExceeded):
    def __init__(self, limit: int) -> None:
        super().__init__("calendar feeds", limit)


class TooManyEventStreams(QuotaExceeded):
    """Open event streams of one user, at once, on one server process."""

    def __init__(self, limit: int) -> None:
        super().__init__("open event streams", limit)


class TooManyWebhooks(QuotaExceeded):
    def __init__(self, limit: int) -> None:
        super().__init__("webhooks", limit)
