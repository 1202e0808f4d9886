"""What a database driver's failure means to the domain, for the failures every adapter wraps
alike: the database cannot be reached, or it has no schema."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError

from todo_core.errors import SchemaMissing, StorageUnavailable


def storage_unavailable(error: BaseException) -> StorageUnavailable:
    """The domain's error for a driver's: `SchemaMissing` when a table is not there (nobody ran
    `todo migrate`), `StorageUnavailable` otherwise."""
    if schema_is_missing(error):
        return SchemaMissing("the database has no schema: run `todo migrate`")
    return StorageUnavailable("the database cannot be reached")


def schema_is_missing(error: BaseException) -> bool:
    """Whether the driver said that a table the statement names does not exist."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return True
    return isinstance(cause, sqlite3.OperationalError) and str(cause).startswith("no such table")
