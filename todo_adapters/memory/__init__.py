"""In-memory adapter: dictionaries behind the ports, for tests and the domain suite. Its modules
mirror `todo_adapters.sqlalchemy`: `tables` (the store), `repositories` (one per aggregate),
`bundle`, `unit_of_work`, `views`, `changes`, `exports`, `webhooks`.

It gives the guarantees of the SQL adapters. A unit of work reads the committed rows with its
own writes on top, and `commit()` applies those writes and nothing else: an abandoned unit of
work leaves nothing behind, and one that commits never undoes another's commit. A unit of
work that writes takes its user's turn before it first touches the user's rows and keeps it
until it ends, as the SQL adapters hold the user's change counter: one user's writers take
turns, and no row is locked on top of that.
"""

from __future__ import annotations

from todo_adapters.memory.changes import InMemoryChangeFeed, InMemoryRetention
from todo_adapters.memory.exports import InMemoryExportReader
from todo_adapters.memory.tables import InMemoryStore
from todo_adapters.memory.unit_of_work import InMemoryUnitOfWork
from todo_adapters.memory.views import InMemoryTaskViews

__all__ = [
    "InMemoryChangeFeed",
    "InMemoryExportReader",
    "InMemoryRetention",
    "InMemoryStore",
    "InMemoryTaskViews",
    "InMemoryUnitOfWork",
]
