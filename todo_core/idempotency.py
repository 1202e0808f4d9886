"""Safe retries: a command sent with an idempotency key runs once, however often it is sent.

The first request with a key runs its command and records what it answered under the key,
in the command's own transaction: a crash leaves both the change and the key, or neither. A
retry with the same key and the same request gets that recorded answer and changes nothing;
with another request, it is refused. A retry that arrives while the first is still running
waits for it (the first holds the key until it commits or rolls back), so exactly one of
them runs the command. The runner (`todo_core.commands.run_once`) does all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

KEY_MAX_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Answer:
    """What a command answered, in the terms of the driving adapter that ran it, kept to answer
    a retry alike. The domain never reads it: the adapter that builds it reads it back (the REST
    API: an HTTP status, the headers a replay repeats, the body; MCP: a tool's JSON result)."""

    code: int
    labels: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Recorded:
    """A key's record: the request it came with (as a fingerprint) and what it answered."""

    fingerprint: str
    answer: Answer


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A key a request came with: the user's `key`, a `fingerprint` of the request (the same
    request, the same fingerprint), and how long a recorded answer is kept (`kept_for`)."""

    user_id: str
    key: str
    fingerprint: str
    kept_for: timedelta
