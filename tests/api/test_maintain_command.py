"""`todo maintain`: the purge an operator schedules, run as the real command on SQLite and
PostgreSQL, in batches of TODO_PURGE_BATCH_ROWS."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import func, insert, select

from tests.migrations.test_schema import fresh_postgres_database
from todo_adapters.sqlalchemy.tables import idempotency_keys, tombstones, user_changes
from todo_api.cli import migrate

TODO = str(Path(sys.executable).parent / "todo")
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of the test's own (the purge sweeps every user's rows)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'todo.db'}"
        migrate(url)
        yield url
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_server_url")) as url:
        migrate(url)
        yield url


def _sync_url(url: str) -> str:
    return url.replace("sqlite+aiosqlite:", "sqlite:")


def maintain(url: str, *arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODO_")}
    env |= {"TODO_DATABASE_URL": url, "TODO_DEV_MODE": "1", **settings}
    return subprocess.run(
        [TODO, "maintain", *arguments], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_todo_maintain_purges_what_expired_in_batches_and_keeps_the_rest(own_database: str) -> None:
    engine = sqlalchemy.create_engine(_sync_url(own_database))
    user = f"user-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(insert(user_changes), [{"user_id": user, "seq": 4, "horizon": 0}])
        connection.execute(
            insert(tombstones),
            [
                {"user_id": user, "id": uuid.uuid4(), "kind": 1, "change_seq": seq, "deleted_at": at}
                for seq, at in [(1, LONG_AGO), (2, LONG_AGO), (3, LONG_AGO), (4, now)]
            ],
        )
        connection.execute(
            insert(idempotency_keys),
            [{"user_id": user, "key": key, "fingerprint": "f", "recorded_at": LONG_AGO} for key in ("a", "b")],
        )

    done = maintain(own_database, TODO_PURGE_BATCH_ROWS="2")

    assert done.returncode == 0, done.stderr
    # Tombstones: a batch of 2, then one of 1; keys: a batch of 2, then one that finds none.
    assert (
        done.stdout.strip()
        == "todo: purged 3 tombstones, 2 idempotency keys and 0 finished webhook deliveries in 5 transactions"
    )
    with engine.connect() as connection:
        left = connection.execute(select(tombstones.c.change_seq).where(tombstones.c.user_id == user)).scalars()
        assert list(left) == [4]  # deleted today: kept
        keys = select(func.count()).select_from(idempotency_keys).where(idempotency_keys.c.user_id == user)
        assert connection.execute(keys).scalar_one() == 0
        horizon = select(user_changes.c.horizon).where(user_changes.c.user_id == user)
        assert connection.execute(horizon).scalar_one() == 3
    engine.dispose()


def test_todo_maintain_every_purges_again_until_stopped(own_database: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODO_")}
    env |= {"TODO_DATABASE_URL": own_database, "TODO_DEV_MODE": "1", "TODO_LOG_FORMAT": "text"}
    process = subprocess.Popen(
        [TODO, "maintain", "--every", "0.2"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stderr is not None
        rounds = 0
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while rounds < 3 and datetime.now(UTC) < deadline:
            line = process.stderr.readline()
            assert line, "the command ended"
            rounds += "purged 0 tombstones, 0 idempotency keys and 0 finished webhook deliveries" in line
        assert rounds == 3
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_todo_maintain_refuses_a_period_that_is_not_positive(tmp_path: Path) -> None:
    done = maintain(f"sqlite:///{tmp_path / 'todo.db'}", "--every", "0")
    assert done.returncode == 2
    assert "--every" in done.stderr
