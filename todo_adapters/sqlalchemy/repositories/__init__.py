"""Repositories on SQLAlchemy Core, one module per aggregate: rows map straight to entities, no
ORM objects in between. The units of work hand them out as one bundle
(`todo_adapters.sqlalchemy.bundle`).

Every statement filters by `user_id`; a row of another user is never read, written or counted.
Statements are built once, in their module, and run with each call's values by an `Executor`
(building a statement costs more than running it).
"""

# Statements the shard-routing tests (tests/api/test_shard_routing.py) check by these names.
from todo_adapters.sqlalchemy.repositories.change_numbers import _NEXT_CHANGE
from todo_adapters.sqlalchemy.repositories.tasks import _CLEAR_CATEGORY, _TAG_COUNTS, _TASK

__all__ = ["_CLEAR_CATEGORY", "_NEXT_CHANGE", "_TAG_COUNTS", "_TASK"]
