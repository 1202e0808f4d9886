"""Realistic data, fast: COPY straight into `tasks`, `task_tags` and `categories`.

The rows obey what the application would have written: `title_key` is `title.casefold()`,
`tags` is a JSON array with one `task_tags` row per tag (`tag_key` its casefold), priority
0-3, time-ordered UUIDv7 ids, timestamps in UTC, `version` >= 1, and `completed_at` set
exactly when the task is completed. The data are the same at every run (a seeded RNG).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from todo_core import ordering

TAGS = [
    "work", "home", "urgent", "errands", "health", "finance", "family", "Shopping", "reading", "travel",
    "garden", "car", "kids", "school", "fitness", "music", "admin", "later", "waiting", "Ideas",
    "phone", "email", "weekend", "project-x", "house", "pets", "taxes", "Birthday", "cooking", "learning",
]  # fmt: skip
TAG_COUNTS, TAG_COUNT_WEIGHTS = [0, 1, 2, 3, 4], [15, 35, 30, 15, 5]
CATEGORIES = ["Work", "Home", "Errands", "Health", "Finance", "Family", "Study", "Garden", "Travel", "Side project"]
VERBS = [
    "Buy", "Call", "Email", "Fix", "Review", "Plan", "Book", "Pay", "Clean", "Write", "Read", "Prepare",
    "Schedule", "Update", "Check", "Renew", "Return", "Order", "Cancel", "Organise",
]  # fmt: skip
OBJECTS = [
    "milk", "the plumber", "Anna", "the quarterly report", "a dentist appointment", "the car insurance",
    "the garage door", "a blog post", "the tax return", "flights to Lisbon", "a birthday gift for Jo",
    "the team meeting notes", "the bike tyres", "the electricity bill", "the Straße 12 lease", "Café Müller",
    "the passport", "the gym membership", "the kids' school forms", "the backup drive", "Ödön's invoice",
    "the library books", "the wedding RSVP", "groceries", "the pull request", "the slides for Monday",
]  # fmt: skip
DESCRIPTIONS = [
    "",
    "",
    "",
    "Before Friday, if possible.",
    "Ask about the discount they mentioned last time.",
    "See the email thread from last week for the details.",
    "Two copies, one for the office.",
    "Remember to keep the receipt.",
]
RULES = ["FREQ=DAILY", "FREQ=WEEKLY", "FREQ=MONTHLY", "FREQ=WEEKLY;INTERVAL=2"]
TASK_COLUMNS = (
    "user_id", "id", "title", "title_key", "description", "completed", "completed_at", "priority", "due_at",
    "remind_at", "recurrence", "tags", "category_id", "next_occurrence_id", "created_at", "updated_at", "version",
    "change_seq", "time_zone", "due_key", "position",
)  # fmt: skip
CATEGORY_COLUMNS = ("user_id", "id", "name", "name_key", "color", "created_at", "updated_at", "version", "change_seq")
CHANGE_COLUMNS = ("user_id", "seq", "horizon", "tasks")
TAG_COLUMNS = ("user_id", "task_id", "tag_key", "tag")
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    """Who gets how many tasks. `open_users` have no completed task (a full page of open ones)."""

    general_users: int = 2000
    general_min_tasks: int = 20
    general_max_tasks: int = 60
    measured: dict[str, int] = field(
        default_factory=lambda: {"bench-u50": 50, "bench-u10k": 10_000, "bench-u100k": 100_000}
    )
    open_users: frozenset[str] = frozenset({"bench-u50"})
    writers: tuple[str, ...] = ("bench-writer", "bench-writer-naive")
    completed_share: float = 0.30
    random_seed: int = 20261127

    def general_user(self, number: int) -> str:
        return f"user-{number:05d}"


@dataclass
class Seeded:
    users: int
    tasks: int
    task_tags: int
    categories: int
    generate_seconds: float
    copy_seconds: float
    analyze_seconds: float

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.copy_seconds + self.analyze_seconds


def _uuid7(moment: datetime, rng: random.Random) -> uuid.UUID:
    millis = int(moment.timestamp() * 1000)
    value = (millis & ((1 << 48) - 1)) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


class _Rows:
    def __init__(self) -> None:
        self.tasks: list[tuple[object, ...]] = []
        self.tags: list[tuple[object, ...]] = []
        self.categories: list[tuple[object, ...]] = []
        self.changes: list[tuple[object, ...]] = []


def _user(rows: _Rows, user_id: str, count: int, *, now: datetime, rng: random.Random, all_open: bool, share: float):
    first_day = now - 365 * DAY
    rows.changes.append((user_id, 1, 0, count))  # every row seeded is the user's first change
    category_ids = []
    for name in rng.sample(CATEGORIES, 5):
        created = first_day + rng.random() * 30 * DAY
        category_id = _uuid7(created, rng)
        category_ids.append(category_id)
        color = f"#{rng.getrandbits(24):06x}" if rng.random() < 0.8 else None
        rows.categories.append((user_id, category_id, name, name.casefold(), color, created, created, 1, 1))

    # Created over the last year, oldest first, so the ids are time-ordered like the app's.
    offsets = sorted(rng.random() * 365 for _ in range(count))
    position = None
    for offset in offsets:
        position = ordering.after(position)  # each one last among the user's top-level tasks
        created = first_day + offset * DAY
        title = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        if rng.random() < 0.3:
            title += f" #{rng.randint(1, 999)}"
        completed = not all_open and rng.random() < share
        updated = min(created + rng.random() * 20 * DAY, now)
        version = 1 + (rng.randint(1, 3) if rng.random() < 0.3 else 0) + (1 if completed else 0)
        due_at = remind_at = recurrence = None
        if rng.random() < 0.65:
            due_at = (created + rng.uniform(-1, 60) * DAY).replace(second=0, microsecond=0)
            if rng.random() < 0.2:
                remind_at = due_at - timedelta(hours=1)
            if rng.random() < 0.03:
                recurrence = rng.choice(RULES)
        tags = rng.sample(TAGS, rng.choices(TAG_COUNTS, TAG_COUNT_WEIGHTS)[0])
        task_id = _uuid7(created, rng)
        rows.tasks.append(
            (
                user_id,
                task_id,
                title,
                title.casefold(),
                rng.choice(DESCRIPTIONS),
                completed,
                updated if completed else None,
                rng.choices((0, 1, 2, 3), (40, 25, 20, 15))[0],
                due_at,
                remind_at,
                recurrence,
                json.dumps(tags, separators=(",", ":")),  # as the server writes them: PostgreSQL keeps json as written
                rng.choice(category_ids) if rng.random() < 0.5 else None,
                None,
                created,
                updated,
                version,
                1,
                "UTC",
                due_at,
                position,
            )
        )
        rows.tags.extend((user_id, task_id, tag.casefold(), tag) for tag in tags)


def _users(plan: Plan, rng: random.Random) -> Iterator[tuple[str, int]]:
    for number in range(1, plan.general_users + 1):
        yield plan.general_user(number), rng.randint(plan.general_min_tasks, plan.general_max_tasks)
    for writer in plan.writers:
        yield writer, 30
    yield from plan.measured.items()


def seed(conninfo: str, plan: Plan) -> Seeded:
    """Fill an empty, migrated database; then VACUUM ANALYZE it (fresh statistics and a
    visibility map, as a database in service has)."""
    rng = random.Random(plan.random_seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    rows = _Rows()
    users = 0
    for user_id, count in _users(plan, rng):
        users += 1
        _user(
            rows,
            user_id,
            count,
            now=now,
            rng=rng,
            all_open=user_id in plan.open_users,
            share=plan.completed_share,
        )
    generated = time.perf_counter()
    with psycopg.connect(conninfo) as connection:
        with connection.cursor() as cursor:
            for table, columns, table_rows in (
                ("user_changes", CHANGE_COLUMNS, rows.changes),
                ("categories", CATEGORY_COLUMNS, rows.categories),
                ("tasks", TASK_COLUMNS, rows.tasks),
                ("task_tags", TAG_COLUMNS, rows.tags),
            ):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in table_rows:
                        copy.write_row(row)
        connection.commit()
    copied = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) user_changes, categories, tasks, task_tags")
    analyzed = time.perf_counter()
    return Seeded(
        users=users,
        tasks=len(rows.tasks),
        task_tags=len(rows.tags),
        categories=len(rows.categories),
        generate_seconds=generated - started,
        copy_seconds=copied - generated,
        analyze_seconds=analyzed - copied,
    )


def task_states(conninfo: str, user_id: str, limit: int | None = None) -> list[tuple[str, bool]]:
    """(id, completed) of a user's tasks, oldest first."""
    with psycopg.connect(conninfo) as connection:
        query = "SELECT id, completed FROM tasks WHERE user_id = %s ORDER BY created_at, id"
        rows = connection.execute(query + (f" LIMIT {int(limit)}" if limit else ""), (user_id,)).fetchall()
    return [(str(task_id), bool(completed)) for task_id, completed in rows]


def task_states_of(conninfo: str, user_ids: list[str]) -> dict[str, list[tuple[str, bool]]]:
    found: dict[str, list[tuple[str, bool]]] = {user_id: [] for user_id in user_ids}
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            "SELECT user_id, id, completed FROM tasks WHERE user_id = ANY(%s) ORDER BY user_id, created_at, id",
            (user_ids,),
        ).fetchall()
    for user_id, task_id, completed in rows:
        found[user_id].append((str(task_id), bool(completed)))
    return found


def count_marked(conninfo: str, user_ids: list[str], marker: str) -> int:
    """How many of these users' tasks carry `marker` at the start of their title."""
    with psycopg.connect(conninfo) as connection:
        row = connection.execute(
            "SELECT count(*) FROM tasks WHERE user_id = ANY(%s) AND starts_with(title, %s)", (user_ids, marker + " ")
        ).fetchone()
    return int(row[0]) if row else 0


def sample_tasks(rng: random.Random, count: int) -> list[dict[str, object]]:
    """Create bodies for the API (the SQLite seed goes through the API itself)."""
    now = datetime.now(UTC)
    bodies: list[dict[str, object]] = []
    for _ in range(count):
        body: dict[str, object] = {
            "title": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}",
            "priority": rng.choice(["none", "low", "medium", "high"]),
            "tags": rng.sample(TAGS, rng.choices(TAG_COUNTS, TAG_COUNT_WEIGHTS)[0]),
            "description": rng.choice(DESCRIPTIONS),
        }
        if rng.random() < 0.65:
            body["due_at"] = (now + rng.uniform(-5, 60) * DAY).replace(microsecond=0).isoformat()
        bodies.append(body)
    return bodies
