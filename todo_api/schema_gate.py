"""Readiness that tells the truth about the schema: a database whose schema is older than the
code's (or missing) makes `/readyz` and every request that would touch it a 503 `not-migrated`
that says "run `todo migrate`", instead of whatever a missing column happens to cause.

The verdict is kept, not asked for at each request: it is checked when the process starts, at
every `/readyz`, and, while the process is not ready, at most every `RECHECK_SECONDS` by the
requests refused meanwhile. So `todo migrate` run beside a live server makes it ready within
seconds, without a restart, and a ready server pays one attribute read per request.

A schema *newer* than the code's (the code was rolled back after a migration) is served, with a
warning in the log: migrations add before they take away, so the older code keeps working, and
refusing would turn every rollback into an outage (docs/operations.md, "Schema revisions").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from todo_api.middleware import API_PREFIX, MCP_PATH, route_path
from todo_api.problems import NOT_MIGRATED_DETAIL, RETRY_AFTER_SECONDS, problem_response
from todo_core.errors import StorageUnavailable

logger = logging.getLogger(__name__)

#: How often requests refused while the schema is behind ask again whether it still is.
RECHECK_SECONDS = 2.0
#: Said by `/readyz` and by every request while the schema is older than the code's.
SCHEMA_BEHIND_DETAIL = (
    "The database's schema is older than this version of the service needs: the operator must run `todo migrate`."
)
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: The paths whose requests read or write the database (and so are refused while it is behind).
_GATED_PREFIXES = (API_PREFIX, MCP_PATH, "/feeds/")


@functools.cache
def code_revisions() -> tuple[str, ...]:
    """The Alembic revisions this code knows, oldest first: the last is the one it needs.

    Read from `migrations/` once a process (~0.2 s: Alembic loads every revision's module)."""
    from alembic.script import ScriptDirectory

    newest_first = [script.revision for script in ScriptDirectory(str(_MIGRATIONS)).walk_revisions()]
    return tuple(reversed(newest_first))


class SchemaRevision(Protocol):
    async def current(self) -> str | None:
        """The revision the database's schema is at; None when it has no schema.

        :raises StorageUnavailable: the database cannot be reached.
        """
        ...


class SchemaGate:
    """The process's verdict on the database's schema, and when it was last checked."""

    def __init__(
        self,
        revision: SchemaRevision,
        known: Sequence[str] | None = None,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._revision = revision
        self._known = known
        self.recheck_seconds = recheck_seconds
        #: None: serve. Else what `/readyz` and the refused requests say.
        self.refusal: str | None = None
        #: Whether the verdict is known: False until a check reached the database.
        self.checked = False
        self._found: str | None = None
        self._checked_at = -math.inf
        self._checking = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Known, and nothing to refuse: requests go on without a look."""
        return self.checked and self.refusal is None

    async def check(self, *, max_age: float = 0) -> None:
        """Read the database's revision again, unless a check (this one's or a concurrent
        one's) is younger than `max_age` seconds.

        :raises StorageUnavailable: the database cannot be reached (the verdict stays as it was).
        """
        async with self._checking:
            if time.monotonic() - self._checked_at < max_age:
                return
            self._checked_at = time.monotonic()
            found = await self._revision.current()
            known = code_revisions() if self._known is None else self._known
            self._judge(found, known)

    async def check_logged(self) -> None:
        """`check`, for the start of the process: a database that cannot be reached yet is
        logged, not raised (the requests will say so, and the next check will tell). A first
        request may have checked already."""
        try:
            await self.check(max_age=self.recheck_seconds)
        except StorageUnavailable as error:
            logger.warning("the database's schema revision could not be read at start: %s", error)

    def _judge(self, found: str | None, known: Sequence[str]) -> None:
        head = known[-1]
        if found is None:
            refusal: str | None = NOT_MIGRATED_DETAIL
        elif found in known[:-1]:
            refusal = SCHEMA_BEHIND_DETAIL
        else:
            refusal = None
        changed = not self.checked or found != self._found
        was_refusing = self.checked and self.refusal is not None
        self.refusal, self._found, self.checked = refusal, found, True
        if not changed:
            return
        if found is None:
            logger.error("the database has no schema: requests are refused (503) until `todo migrate` runs")
        elif refusal is not None:
            logger.error(
                "the database's schema is at revision %s, older than this code's %s: requests are refused (503) "
                "until `todo migrate` runs",
                found,
                head,
            )
        elif found != head:
            logger.warning(
                "the database's schema is at revision %s, which this code does not know (its newest is %s): a newer "
                "version of the service migrated it. Serving anyway: run the newer version again, or downgrade the "
                "schema with that version's migrations before running this one for long",
                found,
                head,
            )
        else:  # worth a line when it ends a refusal; a process starting on its own schema is the norm
            (logger.info if was_refusing else logger.debug)(
                "the database's schema is at revision %s, this code's", found
            )


class SchemaGuard:
    """Refuse requests that would touch the database while the schema is behind or missing: 503
    `not-migrated`, with `Retry-After`. A ready process only reads `gate.ready`."""

    def __init__(self, app: ASGIApp, gate: Callable[[], SchemaGate]) -> None:
        self.app = app
        self._provided = gate
        self._gate: SchemaGate | None = None  # made on first use, as the container's singletons are

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self._gate
        if gate is None:
            gate = self._gate = self._provided()
        if not gate.ready and scope["type"] == "http" and _touches_the_database(scope):
            # A database that cannot be reached: the request meets the outage itself, and says so.
            with contextlib.suppress(StorageUnavailable):
                await gate.check(max_age=gate.recheck_seconds)
            if gate.refusal is not None:
                headers = {"Retry-After": RETRY_AFTER_SECONDS}
                response = problem_response(503, "not-migrated", gate.refusal, headers=headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _touches_the_database(scope: Scope) -> bool:
    return route_path(scope).startswith(_GATED_PREFIXES)
