-- Distribute the todo schema over a Citus cluster by user_id: every row of one user on one shard.
-- Run once on the coordinator, after `todo migrate` has made the schema there (TODO_DATABASE_URL =
-- the coordinator) and before the service takes traffic. See docs/scaling.md.
--
-- Every table is keyed (user_id, ...) and every unique index starts with user_id; the tests prove
-- it on the migrated schema (tests/migrations/test_distribution_keys.py), and prove that every
-- statement a request sends filters on, or inserts, one user_id (tests/sent_statements.py).

CREATE EXTENSION IF NOT EXISTS citus;

-- The widest table is the anchor of the colocation group; its shard count (citus.shard_count,
-- 32 by default) is the group's. Each shard is an ordinary PostgreSQL table on a worker; the
-- rebalancer moves whole shards, so 32 lets the cluster grow to 32 workers without resharding.
SELECT create_distributed_table('tasks', 'user_id');

-- The rest share its hash ranges: a user's tasks, tags, categories, change number, tombstones,
-- idempotency keys and settings always sit on the same worker, so a command's transaction (which
-- writes tasks, task_tags, user_changes, tombstones and idempotency_keys together) and every
-- multi-table read stay on one node.
SELECT create_distributed_table('task_tags', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('categories', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('user_changes', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('tombstones', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('idempotency_keys', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('user_settings', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('calendar_feeds', 'user_id', colocate_with => 'tasks');
-- The outbox is written in the transaction of the task change it tells of: with the tasks.
SELECT create_distributed_table('webhooks', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('webhook_deliveries', 'user_id', colocate_with => 'tasks');
SELECT create_distributed_table('reminders', 'user_id', colocate_with => 'tasks');

-- No reference tables: no table is shared by all users. alembic_version stays a plain table on
-- the coordinator (Alembic's own record); later migrations run on the coordinator, which
-- propagates DDL to every shard.
