"""Each user's change number, which every change of the user's data takes (see `ChangeNumbers`),
and the tombstone a deleted row leaves for sync."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, ScalarSelect, TextClause, bindparam, insert, select, text

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.tables import tombstones, user_changes
from todo_core.errors import UserBusy
from todo_core.sync import ChangeKind

_USER: BindParameter[str] = bindparam("user_id")


def seq_of(user_param: str) -> ScalarSelect[Any]:
    """The user's change number, as this transaction has set it (see `ChangeNumbers`)."""
    return select(user_changes.c.seq).where(user_changes.c.user_id == bindparam(user_param)).scalar_subquery()


# The same text on PostgreSQL and SQLite. The upsert's row lock is held until the transaction ends.
_NEXT_CHANGE = text(
    "INSERT INTO user_changes (user_id, seq, horizon) VALUES (:user_id, 1, 0) "
    "ON CONFLICT (user_id) DO UPDATE SET seq = user_changes.seq + 1"
)
# SQLite: not while an import of the user's is being written (see `import_slices.py`); no row
# changes then.
_NEXT_CHANGE_UNLESS_IMPORTING = text(
    "INSERT INTO user_changes (user_id, seq, horizon) VALUES (:user_id, 1, 0) "
    "ON CONFLICT (user_id) DO UPDATE SET seq = user_changes.seq + 1 WHERE user_changes.importing IS NULL"
)
_CHANGE_NUMBER = select(user_changes.c.seq).where(user_changes.c.user_id == _USER)
# PostgreSQL: the user's turn, a lock queue in arrival order, held to the end of the transaction.
# The upsert alone queues nobody: each waiter sleeps until the row's holder ends, then all of
# them race for it again, and `lock_timeout` restarts with every new holder; behind a line of
# the user's batches a write waited 0.9 s, 0.9 s, 0.9 s … until the statement timeout (503).
# In this queue it sleeps once, and `lock_timeout` bounds its whole wait.
_USERS_TURN = text("SELECT pg_advisory_xact_lock(hashtextextended(:user_id, 1700))")
# PostgreSQL: the wait for the change number bounded, and only that wait (see `ChangeNumbers`).
_BOUNDED_WAITS: dict[int, TextClause] = {}
_UNBOUNDED_WAIT = text("SET LOCAL lock_timeout TO DEFAULT")


def _bounded_wait(milliseconds: int) -> TextClause:
    """`SET LOCAL lock_timeout` to this many ms; one statement per value (a process has one)."""
    found = _BOUNDED_WAITS.get(milliseconds)
    if found is None:
        found = _BOUNDED_WAITS[milliseconds] = text(f"SET LOCAL lock_timeout = {int(milliseconds)}")
    return found


_INSERT_TOMBSTONE = insert(tombstones).values(change_seq=seq_of("b_user_id"))


class ChangeNumbers:
    """The users whose change numbers one unit of work has taken (see `UnitOfWork`).

    A writing unit of work takes the user's next number before its first statement on the
    user's rows, and so holds the user's counter row (locked by the upsert) before it reads
    anything: one user's writers take turns, each reading what the one before committed. That
    is the only row lock a unit of work takes (no `FOR UPDATE`; see docs/guarantees.md). A unit
    of work that only reads takes none (`taking=False`).

    With `lock_timeout_ms` (PostgreSQL), the wait for the number is bounded: the writer first
    queues for the user's turn (a transaction-scoped advisory lock, granted in arrival order),
    then takes the number; past the bound either statement fails with `lock_not_available`,
    which the unit of work turns into `UserBusy`.
    Only that wait: the lock it waits for is held by the same user's other writes, whereas a
    wait for anything else (a table an operator or a migration locked) is no user's doing and
    keeps the statement timeout (503).

    With `refusing_imports` (SQLite), a user whose import is being written in slices gets no
    number: `UserBusy` (429), as on PostgreSQL a write that waits for the user's import.

    `first` (SQLite) is awaited with the user before the first number is taken: the unit of
    work takes the writer's turn for that user then (`SqliteWriters`).
    """

    def __init__(
        self,
        executor: Executor,
        *,
        taking: bool = True,
        lock_timeout_ms: int | None = None,
        refusing_imports: bool = False,
        first: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self._sql = executor
        self._first = first
        self._taking = taking
        self._refusing_imports = refusing_imports
        self._bounded = None if lock_timeout_ms is None else _bounded_wait(lock_timeout_ms)
        self.taken: set[str] = set()
        #: The users whose data this unit of work changed: their change is to be announced.
        self.changed: set[str] = set()

    async def take(self, user_id: str) -> None:
        if self._taking and user_id not in self.taken:
            if self._first is not None:
                first, self._first = self._first, None
                await first(user_id)
            if self._refusing_imports:
                if await self._sql.count(_NEXT_CHANGE_UNLESS_IMPORTING, {"user_id": user_id}) != 1:
                    raise UserBusy("an import into this account is being written; try again when it is done")
            elif self._bounded is None:
                await self._sql.run(_NEXT_CHANGE, {"user_id": user_id})
            else:  # pipelined: four statements, one round trip
                await self._sql.run(self._bounded, {})
                await self._sql.run(_USERS_TURN, {"user_id": user_id})
                await self._sql.run(_NEXT_CHANGE, {"user_id": user_id})
                await self._sql.run(_UNBOUNDED_WAIT, {})
            self.taken.add(user_id)

    async def write(self, user_id: str) -> None:
        await self.take(user_id)
        self.changed.add(user_id)

    async def current(self, user_id: str) -> int:
        """The user's change number as this unit of work sees it."""
        rows = await self._sql.rows(_CHANGE_NUMBER, {"user_id": user_id})
        return int(rows[0][0])


async def bury(
    sql: Executor, changes: ChangeNumbers, user_id: str, row_id: UUID, kind: ChangeKind, now: datetime
) -> None:
    """Leave the tombstone of a row just deleted, for sync."""
    await changes.write(user_id)
    values = {"user_id": user_id, "id": row_id, "kind": int(kind), "deleted_at": now, "b_user_id": user_id}
    await sql.run(_INSERT_TOMBSTONE, values)
