"""Erasing a user's account on SQLAlchemy Core (`todo_core.ports.AccountEraser`)."""

from __future__ import annotations

from sqlalchemy import BindParameter, bindparam, delete, update

from todo_adapters.sqlalchemy.execution import Executor
from todo_adapters.sqlalchemy.repositories.change_numbers import ChangeNumbers
from todo_adapters.sqlalchemy.tables import metadata, user_changes

_USER: BindParameter[str] = bindparam("user_id")


#: What erasing a user deletes: every table with a `user_id`, so a table added later is erased
#: too, but the change counter, which outlives the user's data to refuse old sync tokens.
#: Children first (a distributed database may add foreign keys).
ERASED_TABLES = tuple(
    table for table in reversed(metadata.sorted_tables) if "user_id" in table.c and table is not user_changes
)
_ERASE = [delete(table).where(table.c.user_id == _USER) for table in ERASED_TABLES]
# Every token issued before the erasure names a number below the new horizon: 410. No tasks left.
_FORGET_HISTORY = (
    update(user_changes)
    .where(user_changes.c.user_id == bindparam("b_user_id"))
    .values(horizon=user_changes.c.seq, tasks=0)
)


class SqlAccountEraser:
    def __init__(self, executor: Executor, changes: ChangeNumbers) -> None:
        self._sql = executor
        self._changes = changes

    async def erase(self, user_id: str) -> None:
        # First the user's next change number: it waits for the user's other writers, and its
        # announcement tells open streams to sync (and so learn that their token is void).
        await self._changes.write(user_id)
        for statement in _ERASE:
            await self._sql.run(statement, {"user_id": user_id})
        await self._sql.run(_FORGET_HISTORY, {"b_user_id": user_id})
