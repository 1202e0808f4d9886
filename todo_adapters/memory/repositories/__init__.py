"""Repositories in memory, one module per aggregate (as `todo_adapters.sqlalchemy.repositories`),
each on one unit of work's view of the store (`todo_adapters.memory.tables`)."""
