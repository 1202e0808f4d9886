"""Whether a statement the service sends would go to one shard of a database distributed by
`user_id` (Citus): each table it reads or writes is pinned to one user.

A distributed table (any table of `todo_adapters.sqlalchemy.tables.metadata`) is pinned when
- in a SELECT, UPDATE or DELETE, its own WHERE clause requires `user_id = <value>` (a top-level
  AND term), or `user_id` equal to that of another table of the statement that is pinned;
- as the target of an INSERT, every row inserted gives `user_id` a value.
And the values given to `user_id` throughout the statement, read from its parameters, are one.

Statements naming no distributed table (BEGIN, COMMIT, LISTEN, `SELECT 1`, the driver's
catalogue queries) go to the coordinator alone and pass. So does the short list of statements
below that cross users on purpose: each runs on every shard, as Citus allows, and none is sent
for a request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from todo_adapters.sqlalchemy import change_listener, webhooks
from todo_adapters.sqlalchemy.execution import compiled_for_postgresql
from todo_adapters.sqlalchemy.repositories import retention
from todo_adapters.sqlalchemy.tables import metadata

DISTRIBUTED_TABLES = frozenset(metadata.tables)
_NAMED = re.compile(r"\b(" + "|".join(sorted(DISTRIBUTED_TABLES)) + r")\b", re.IGNORECASE)
_COLUMN = "user_id"
_UNSET = object()


def _normalised(sql: str) -> str:
    return " ".join(sql.split())


def _postgres_sql(statement: Any, *value_names: str) -> str:
    return _normalised(compiled_for_postgresql(statement, dict.fromkeys(value_names)).sql)


_PURGE = (
    "the purge of what is kept only for a while (todo_api/maintenance.py, `Retention`: tombstones, idempotency "
    "keys, finished webhook deliveries): a batch of at "
    "most TODO_PURGE_BATCH_ROWS of every user's expired rows, oldest first; a multi-shard statement, "
    "sent by `todo maintain` or by one process of `todo serve` at a time, never for a request"
)
#: Statements that cross users on purpose, by their exact SQL text, each with why. Each is sent
#: outside any request; Citus runs it on every shard in parallel.
CROSS_USER_STATEMENTS: Mapping[str, str] = {
    _postgres_sql(retention._MOVE_HORIZONS, "deleted_from", "deleted_before", "limit"): _PURGE,
    _postgres_sql(retention._PURGE_TOMBSTONES, "deleted_from", "deleted_before", "limit"): _PURGE,
    _postgres_sql(retention._PURGE_KEYS, "recorded_from", "recorded_before", "limit"): _PURGE,
    _postgres_sql(webhooks.CLAIM, "now", "limit"): (
        "the webhook delivery loop's claim (todo_core/use_cases/webhooks.py, `deliver_due`): the next due "
        "deliveries of every user, a batch at most, skipping those another process holds; sent by the "
        "delivery loop of `todo serve` or `todo worker`, never for a request"
    ),
    _postgres_sql(webhooks.CLAIM_REMINDERS, "now", "limit"): (
        "the delivery loop's claim of the reminders that fell due (`deliver_due`, in the claim's transaction): "
        "the soonest due of every user, a batch at most, deleted as they are taken so that each is claimed once; "
        "sent by the delivery loop of `todo serve` or `todo worker`, never for a request"
    ),
    _postgres_sql(webhooks.NEXT_DUE): (
        "the delivery loop's look at when something is next due, across users (todo_api/maintenance.py, "
        "`deliver_periodically`): a read of two index ends, once per wake-up or poll, never for a request"
    ),
    _postgres_sql(webhooks.PURGE_FINISHED, "state", "finished_from", "finished_before", "limit"): _PURGE,
    _normalised(change_listener._CURRENT_NUMBERS): (
        "the change listener's catch-up when it (re)connects and every few seconds "
        "(todo_adapters/sqlalchemy/change_listener.py): "
        "the change numbers of the users with an open event stream in this process, one statement for all; "
        "Citus prunes it to the shards of those users"
    ),
}


def unrouted(
    sql: str,
    parameters: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    allowed: Mapping[str, str] = CROSS_USER_STATEMENTS,
) -> str | None:
    """Why the statement (PostgreSQL text, `%(name)s` placeholders) with these parameters would
    not go to one shard; None when it would, or when it is one of `allowed`."""
    if not _NAMED.search(sql) or _normalised(sql) in allowed:
        return None
    pins = _pins(sql)
    if isinstance(pins, str):
        return pins
    users = {_value(value, parameters) for value in pins}
    if _UNSET in users:
        return "a user_id value is not among the parameters"
    if len(users) != 1:
        return f"it names {len(users)} users: {sorted(map(repr, users))}"
    return None


@functools.lru_cache(maxsize=4096)
def _pins(sql: str) -> str | tuple[exp.Expression, ...]:
    """What gives `user_id` its values in the statement; or why some table has none. (The
    service sends the same few hundred texts again and again: each is read once.)"""
    try:
        tree = sqlglot.parse_one(sql, dialect="postgres")
    except sqlglot.errors.ParseError as error:
        return f"cannot be read ({str(error).splitlines()[0]})"
    values: list[exp.Expression] = []
    links: dict[str, str] = {}  # a table pinned to the same user as another one: name → other's name
    for table in tree.find_all(exp.Table):
        if table.name not in DISTRIBUTED_TABLES:
            continue
        reason = _pin(table, values, links)
        if reason:
            return reason
    for name in links:
        seen = {name}
        while name in links and links[name] not in seen:
            name = links[name]
            seen.add(name)
        if name in links:
            return f"{' and '.join(sorted(seen))} are filtered on each other's user_id, not on a user"
    return tuple(values)


def _pin(table: exp.Table, values: list[exp.Expression], links: dict[str, str]) -> str | None:
    """Add the value that pins `table` to one user to `values` (or the table whose user it must
    share to `links`); or say why nothing does."""
    scope = table.find_ancestor(exp.Insert, exp.Select, exp.Update, exp.Delete)
    if isinstance(scope, exp.Insert) and isinstance(scope.this, exp.Schema) and scope.this.this is table:
        return _pin_insert(table, scope, values)
    if scope is None:
        return f"{table.name} is read outside a SELECT, INSERT, UPDATE or DELETE"
    where = scope.args.get("where")
    terms = list(where.this.flatten()) if where is not None and isinstance(where.this, exp.And) else []
    if where is not None and not terms:
        terms = [where.this]
    names = {table.alias_or_name, table.name}
    single = len(list(scope.find_all(exp.Table))) == 1 or isinstance(scope, exp.Update | exp.Delete)
    link = None
    for term in terms:
        if not isinstance(term, exp.EQ):
            continue
        for column, other in ((_bare(term.this), _bare(term.expression)), (_bare(term.expression), _bare(term.this))):
            if not (isinstance(column, exp.Column) and column.name == _COLUMN):
                continue
            if column.table not in names and not (single and not column.table):
                continue
            if isinstance(other, exp.Placeholder | exp.Literal):
                values.append(other)
                return None
            if isinstance(other, exp.Column) and other.name == _COLUMN and other.table not in names:
                link = other.table
    if link:
        links[table.alias_or_name] = link
        return None
    return f"{table.name} is not filtered on one user_id in `{scope.sql(dialect='postgres')[:200]}`"


def _bare(value: exp.Expression) -> exp.Expression:
    """The value without the casts and parentheses around it (`%(user_id)s::VARCHAR`)."""
    while isinstance(value, exp.Cast | exp.Paren):
        value = value.this
    return value


def _pin_insert(table: exp.Table, insert: exp.Insert, values: list[exp.Expression]) -> str | None:
    columns = [column.name for column in insert.this.expressions]
    rows = insert.expression
    if _COLUMN not in columns:
        return f"a row inserted into {table.name} has no user_id"
    at = columns.index(_COLUMN)
    if isinstance(rows, exp.Select):
        # INSERT … SELECT: every row gets the one user_id the SELECT list gives it (the tables
        # it reads are checked on their own).
        given = _bare(rows.expressions[at].unalias())
        if not isinstance(given, exp.Placeholder | exp.Literal):
            return f"the rows inserted into {table.name} take their user_id from what they select"
        values.append(given)
        return None
    if not isinstance(rows, exp.Values):
        return f"the rows inserted into {table.name} are not given one by one"
    values += [_bare(row.expressions[at]) for row in rows.expressions]
    return None


def _value(value: exp.Expression, parameters: Mapping[str, Any] | Sequence[Any] | None) -> Any:
    if isinstance(value, exp.Literal):
        return value.this
    if not (isinstance(value, exp.Placeholder) and value.name and isinstance(parameters, Mapping)):
        return _UNSET  # positional: which value goes where cannot be told from the text
    return parameters.get(value.name, _UNSET)
