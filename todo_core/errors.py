"""Domain errors: what went wrong, in the user's terms. The API maps each type to a status."""

from __future__ import annotations

from dataclasses import dataclass


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


class AuthenticationFailed(DomainError):
    """No credential, or one that cannot be trusted. Carries no detail for the caller."""


class Forbidden(DomainError):
    """A trusted caller asks for something that is not theirs to ask for."""


class StorageUnavailable(DomainError):
    """The store cannot be reached right now; the same request may succeed later."""


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
