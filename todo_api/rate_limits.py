"""Per-user rate limits (the `limits` library): counted in this process, or in Redis so that
every replica shares them.

Each request under /api/ counts against its user, known once `Authentication` has verified
the token (a request it refuses costs nothing here). A calendar feed (`/feeds/{secret}.ics`)
carries no token: it counts against its feed URL, so that pollers of one link share one budget
and a guess of another's link, or of a user id, takes nobody's budget away. Nothing else (health
probes, /metrics, /problems, the docs) is limited.

The limits are fixed windows (`limits`' `FixedWindowRateLimiter` semantics: a counter per key and
window, incremented by every request, the refused ones included, so that a client that does not
wait stays refused). A response tells the client where it stands in the IETF fields of
draft-ietf-httpapi-ratelimit-headers-10 (structured fields, RFC 9651):

    RateLimit-Policy: "30/second";q=30;w=1, "1200/minute";q=1200;w=60
    RateLimit: "30/second";r=12;t=1

`RateLimit` names the policy closest to exhaustion: `r` requests remain in its window, which
ends in `t` seconds. A refused request gets 429 `rate-limited` with both fields and
`Retry-After`.

When Redis cannot be reached, requests are let through (logged, once a second at most) rather
than refused: the limits protect the service; they are not worth an outage of their own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from starlette.responses import Response
from starlette.types import Scope

from todo_api.problems import problem_response

if TYPE_CHECKING:  # logs needs the settings, which need `parse_limits`
    from todo_api.logs import UserIdHasher

#: Where refusals (429) and a Redis that cannot be reached are logged.
logger = logging.getLogger("todo_api.rate_limits")

API_PREFIX = "/api/"
FEEDS_PREFIX = "/feeds/"
#: After Redis failed, how long requests go unlimited before it is tried again: a Redis that is
#: down costs one failed attempt per second, not one per request.
REDIS_RETRY_SECONDS = 1.0
#: redis-py's waits for a connection and an answer: a Redis that does not answer must not hold
#: requests up for long.
REDIS_TIMEOUT_SECONDS = 0.25
NO_LIMITS = "none"
#: How often the memory storage forgets the counters of ended windows (see `SweptMemoryStorage`).
SWEEP_SECONDS = 1.0


def parse_limits(notation: str) -> list[RateLimitItem]:
    """The limits of `TODO_RATE_LIMITS`: `limits`' notation (`30/second;1200/minute`), or `none`.

    :raises ValueError: the text is not in that notation.
    """
    if notation.strip().lower() == NO_LIMITS:
        return []
    return parse_many(notation)


class SweptMemoryStorage(MemoryStorage):
    """`limits`' memory storage, its sweep of ended windows' counters at most once a second.

    The library (5.8.0) starts a sweep of every counter at each increment once the previous sweep
    has finished: under load, one sweep per request. With 10,000 users' counters that walk cost
    1.6 to 3 ms of CPU per request (measured, see docs/limits.md). A counter whose window has
    ended is already ignored and dropped when its key is next read (`get`), so the sweep only
    frees memory, and once a second is plenty. The override names the library's private method
    as Python mangles it: the pinned version is the one it is written for.
    """

    _next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    #: With a refusal: the seconds until the exhausted window ends.
    retry_after: int
    #: With a refusal: the limit that refused, in the settings' notation.
    policy: str
    #: Whether this is the window's first refusal (the one that is logged).
    first_refusal: bool


class RateLimiter:
    """Counts requests per key against every limit; the storage is `limits`' memory storage, or
    its Redis storage (through redis-py's asyncio client) with keys under `<key_prefix>:`."""

    def __init__(self, items: list[RateLimitItem], *, redis_url: str | None = None, key_prefix: str = "todo") -> None:
        self._items = items
        self._names = [_name(item) for item in items]
        self._storage: Storage
        if redis_url:
            self._storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{key_prefix}:limits",
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            self._storage = SweptMemoryStorage()
        self.shared = redis_url is not None
        self._policy = ", ".join(
            f'"{name}";q={item.amount};w={item.get_expiry()}' for name, item in zip(self._names, items, strict=True)
        ).encode()
        self._unavailable_until = 0.0
        self._logged_failure_at = 0.0

    async def hit(self, key: str) -> Verdict | None:
        """Count one request of `key` against every limit; None when the count could not be
        kept (Redis unreachable): the request goes through."""
        if self.shared and time.monotonic() < self._unavailable_until:
            return None
        try:
            counts = [await self._storage.incr(item.key_for(key), item.get_expiry()) for item in self._items]
            # The policy closest to exhaustion (the one refusing, if any) is the one reported.
            amounts = [item.amount for item in self._items]
            tightest = min(range(len(counts)), key=lambda n: (amounts[n] - counts[n]) / amounts[n])
            item = self._items[tightest]
            reset = await self._storage.get_expiry(item.key_for(key))
        except Exception:
            self._storage_failed()
            return None
        seconds = max(1, math.ceil(reset - time.time()))
        remaining = max(0, item.amount - counts[tightest])
        allowed = counts[tightest] <= item.amount
        headers = [
            (b"ratelimit-policy", self._policy),
            (b"ratelimit", f'"{self._names[tightest]}";r={remaining};t={seconds}'.encode()),
        ]
        return Verdict(allowed, headers, seconds, self._names[tightest], counts[tightest] == item.amount + 1)

    def _storage_failed(self) -> None:
        now = time.monotonic()
        self._unavailable_until = now + REDIS_RETRY_SECONDS
        if now - self._logged_failure_at >= REDIS_RETRY_SECONDS:
            self._logged_failure_at = now
            logger.warning("rate limits not counted: Redis cannot be reached; requests go through unlimited")

    async def close(self) -> None:
        if isinstance(self._storage, RedisStorage):
            # Not the storage's `reset()`, which would delete every counter of every replica.
            await self._storage.bridge.storage.aclose()  # type: ignore[attr-defined]


def _name(item: RateLimitItem) -> str:
    """A limit as `TODO_RATE_LIMITS` writes it: `30/second`, `100/10 minutes`."""
    per = item.GRANULARITY.name if item.multiples == 1 else f"{item.multiples} {item.GRANULARITY.name}s"
    return f"{item.amount}/{per}"


class RateLimiting:
    """Refuse a user's requests beyond the limits with 429 `rate-limited`; tell every limited
    response where its user stands (`RateLimit`, `RateLimit-Policy`). Asked by the request
    pipeline (todo_api/middleware.py) after authentication."""

    def __init__(self, limiter: Callable[[], RateLimiter | None], user_id_hasher: Callable[[], UserIdHasher]) -> None:
        self.limiter = limiter
        self.user_id_hasher = user_id_hasher

    async def check(self, scope: Scope, path: str) -> tuple[Response | None, list[tuple[bytes, bytes]]]:
        """The 429 that answers the request, if it is over a limit; the headers to add to its
        answer otherwise (none when it is not limited). `path` is the one the router matches."""
        limiter = self.limiter()
        key = None if limiter is None else _key(scope, path)
        if limiter is None or key is None:
            return None, []
        verdict = await limiter.hit(key)
        if verdict is None:
            return None, []
        if verdict.allowed:
            return None, verdict.headers
        if verdict.first_refusal:
            logger.warning(
                "rate limit %s reached by %s: refused with 429 for %d s",
                verdict.policy,
                self._who(key),
                verdict.retry_after,
                extra={"limit": verdict.policy, "retry_after": verdict.retry_after},
            )
        detail = (
            f"More requests than this service allows ({verdict.policy}); "
            f"retry after {verdict.retry_after} s (see the RateLimit header)."
        )
        headers = {name.decode(): value.decode() for name, value in verdict.headers}
        headers["Retry-After"] = str(verdict.retry_after)
        return problem_response(429, "rate-limited", detail, headers=headers), []

    def _who(self, key: str) -> str:
        kind, _, subject = key.partition(":")
        return f"user {self.user_id_hasher()(subject)}" if kind == "user" else f"calendar feed {subject[:12]}"


def _key(scope: Scope, path: str) -> str | None:
    """Whose budget the request takes: `user:<id>` (verified by then), `feed:<hash of the URL's
    secret>` (never the secret itself, which Redis has no need to hold), or None: unlimited."""
    user_id = scope.get("state", {}).get("user_id")
    if user_id is not None:
        return f"user:{user_id}"
    if path.startswith(FEEDS_PREFIX):
        return "feed:" + hashlib.sha256(path.encode()).hexdigest()[:32]
    return None
