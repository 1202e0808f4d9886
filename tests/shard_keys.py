"""What a schema needs to be distributed by `user_id` (Citus) unchanged, checked on a live database.

Citus enforces a primary key or a uniqueness rule only when it includes the distribution
column, and a foreign key between distributed tables only when both sides carry it (the
rows it pairs then live on one shard). Our convention is stricter, and cheap to check: every
key and every unique index *starts* with `user_id`, so one user's rows are also one range of
every index, and every foreign key pairs `user_id` with `user_id`.
"""

from __future__ import annotations

from sqlalchemy import Inspector

DISTRIBUTION_COLUMN = "user_id"
#: Alembic's own record of the schema's revision: one row, no user's data. Under Citus it stays
#: a plain table on the coordinator (see deploy/citus/distribute.sql).
NOT_DISTRIBUTED = frozenset({"alembic_version"})
_NOT_FIRST = f"does not start with {DISTRIBUTION_COLUMN}"


def distribution_key_violations(inspector: Inspector) -> list[str]:
    """Every way the database's tables break the convention above, one sentence each; empty
    when they all keep it."""
    found: list[str] = []
    for table in sorted(set(inspector.get_table_names()) - NOT_DISTRIBUTED):
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        if key[:1] != [DISTRIBUTION_COLUMN]:
            found.append(f"{table}: primary key {key} {_NOT_FIRST}")
        for unique in inspector.get_unique_constraints(table):
            if unique["column_names"][:1] != [DISTRIBUTION_COLUMN]:
                found.append(f"{table}: unique constraint {unique['name']} {unique['column_names']} {_NOT_FIRST}")
        for index in inspector.get_indexes(table):
            # A unique constraint is also reported as an index by PostgreSQL: said once above.
            if (
                index["unique"]
                and not index.get("duplicates_constraint")
                and index["column_names"][:1] != [DISTRIBUTION_COLUMN]
            ):
                found.append(f"{table}: unique index {index['name']} {index['column_names']} {_NOT_FIRST}")
        for foreign in inspector.get_foreign_keys(table):
            pairs = dict(zip(foreign["constrained_columns"], foreign["referred_columns"], strict=True))
            if pairs.get(DISTRIBUTION_COLUMN) != DISTRIBUTION_COLUMN:
                found.append(
                    f"{table}: foreign key {foreign['name']} {foreign['constrained_columns']} → "
                    f"{foreign['referred_table']} {foreign['referred_columns']} does not pair {DISTRIBUTION_COLUMN} "
                    f"with {DISTRIBUTION_COLUMN}"
                )
    return found
