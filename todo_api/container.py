"""Wiring: settings → engine → units of work and task views (→ use cases), and the identity
verifier.

Tests swap an adapter with one override, e.g.
`container.unit_of_work.override(providers.Factory(InMemoryUnitOfWork, store))`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from dependency_injector import containers, providers

from todo_adapters.auth import JwksKeys, JwtVerifier, SharedSecretKeys
from todo_adapters.broker import BrokerReminderAnnouncer, ChangeBroker
from todo_adapters.clock import SystemClock
from todo_adapters.sqlalchemy.change_listener import PostgresChangeListener
from todo_adapters.sqlalchemy.changes import PostgresChangeFeed, SqliteChangeFeed, SqlRetention
from todo_adapters.sqlalchemy.engine import create_engine, engine_pool_usage, normalise_url
from todo_adapters.sqlalchemy.export_locks import PostgresExportLocks, SqliteExportLocks
from todo_adapters.sqlalchemy.exports import PostgresExportReader, SqliteExportReader
from todo_adapters.sqlalchemy.psycopg import PostgresPool, PostgresUnitOfWork
from todo_adapters.sqlalchemy.purge_lock import PostgresPurgeLock, SqlitePurgeLock
from todo_adapters.sqlalchemy.reminder_announcer import PostgresReminderAnnouncer
from todo_adapters.sqlalchemy.schema_revision import PostgresSchemaRevision, SqliteSchemaRevision
from todo_adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from todo_adapters.sqlalchemy.views import PostgresTaskViews, SqliteTaskViews
from todo_adapters.webhook_delivery import HttpWebhookSender, WebhookDestinationsChecker
from todo_api.calendars import RenderedCalendars
from todo_api.cursor import CursorCodec
from todo_api.exports import RunningExports
from todo_api.logs import UserIdHasher
from todo_api.metrics import Metrics, multiprocess_directory
from todo_api.rate_limits import RateLimiter, parse_limits
from todo_api.schema_gate import SchemaGate
from todo_api.settings import Settings
from todo_api.sync_tokens import SyncTokenCodec


def _key_source(settings: Settings) -> JwksKeys | SharedSecretKeys:
    if settings.jwks_url:
        return JwksKeys(settings.jwks_url)
    assert settings.jwt_secret is not None, "Settings guarantees one of the two"
    return SharedSecretKeys(settings.jwt_secret.get_secret_value())


def _backend(settings: Settings) -> str:
    """ "postgresql" or "sqlite": which database the URL names."""
    return normalise_url(settings.database_url).get_backend_name()


def _postgres_pool(settings: Settings) -> PostgresPool:
    return PostgresPool(
        normalise_url(settings.database_url),
        size=settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        transaction_pooler=settings.database_pooler == "transaction",
    )


def _change_listener(settings: Settings, broker: ChangeBroker) -> PostgresChangeListener:
    # LISTEN holds a server session for as long as it listens: through a transaction pooler it
    # would hear nothing, so it may take a direct URL of its own.
    return PostgresChangeListener(normalise_url(settings.listen_database_url or settings.database_url), broker)


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    """The per-user rate limiter, or None when `TODO_RATE_LIMITS=none`."""
    items = parse_limits(settings.rate_limits)
    if not items:
        return None
    return RateLimiter(items, redis_url=settings.redis_url, key_prefix=settings.redis_key_prefix)


def _postgres_export_locks(settings: Settings) -> PostgresExportLocks:
    # A session of its own, as LISTEN needs: the direct URL when a pooler is in between.
    url = normalise_url(settings.listen_database_url or settings.database_url)
    return PostgresExportLocks(url, timeout=settings.db_timeout_seconds)


def _postgres_purge_lock(settings: Settings) -> PostgresPurgeLock:
    return PostgresPurgeLock(normalise_url(settings.database_url), timeout=settings.db_timeout_seconds)


def _sqlite_purge_lock(settings: Settings) -> SqlitePurgeLock:
    return SqlitePurgeLock(normalise_url(settings.database_url))


def _token_secret(settings: Settings) -> bytes:
    """The key that signs page cursors and sync tokens."""
    if settings.cursor_secret is not None:
        return settings.cursor_secret.get_secret_value().encode()
    if settings.jwt_secret is not None:
        # A key of its own, derived from one every replica already shares.
        return hmac.new(settings.jwt_secret.get_secret_value().encode(), b"todo token signing", hashlib.sha256).digest()
    # Nothing shared to derive from (JWKS): tokens are valid for this process's lifetime only.
    return secrets.token_bytes(32)


def _log_key(token_secret: bytes) -> bytes:
    """The key that hashes user ids in logs: derived, so that it signs nothing."""
    return hmac.new(token_secret, b"todo log user ids", hashlib.sha256).digest()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    backend = providers.Singleton(_backend, settings)
    #: Where this process hears of committed changes (and its event streams listen).
    broker = providers.Singleton(ChangeBroker)
    #: SQLite: SQLAlchemy's engine runs every statement.
    engine = providers.Singleton(
        create_engine, url=settings.provided.database_url, pool_size=settings.provided.db_pool_size
    )
    #: PostgreSQL: psycopg's pool runs every statement.
    postgres_pool = providers.Singleton(_postgres_pool, settings)
    #: PostgreSQL: the process's one connection that hears every process's changes.
    change_listener = providers.Singleton(_change_listener, settings, broker)
    #: Commands: one transaction each.
    unit_of_work = providers.Selector(
        backend,
        postgresql=providers.Factory(PostgresUnitOfWork, postgres_pool),
        sqlite=providers.Factory(SqlAlchemyUnitOfWork, engine, broker=broker),
    )
    #: Queries that read entities (categories, tags, reminders): no transaction.
    reader = providers.Selector(
        backend,
        postgresql=providers.Factory(PostgresUnitOfWork, postgres_pool, read_only=True),
        sqlite=providers.Factory(SqlAlchemyUnitOfWork, engine, read_only=True),
    )
    #: Queries of tasks (list, get): views straight to the wire.
    task_views = providers.Selector(
        backend,
        postgresql=providers.Singleton(PostgresTaskViews, postgres_pool),
        sqlite=providers.Singleton(SqliteTaskViews, engine),
    )
    #: Sync: what changed since a position, read in one snapshot.
    change_feed = providers.Selector(
        backend,
        postgresql=providers.Singleton(PostgresChangeFeed, postgres_pool),
        sqlite=providers.Singleton(SqliteChangeFeed, engine),
    )
    #: Export: a user's whole account, read from one snapshot.
    export_reader = providers.Selector(
        backend,
        postgresql=providers.Singleton(PostgresExportReader, postgres_pool),
        sqlite=providers.Singleton(SqliteExportReader, engine),
    )
    #: Whether the database's schema is the code's (checked at start, on /readyz, and while not).
    schema_gate = providers.Singleton(
        SchemaGate,
        providers.Selector(
            backend,
            postgresql=providers.Factory(PostgresSchemaRevision, postgres_pool),
            sqlite=providers.Factory(SqliteSchemaRevision, engine),
        ),
    )
    #: The users whose export this process is sending, and their locks against other processes'.
    export_locks = providers.Selector(
        backend,
        postgresql=providers.Singleton(_postgres_export_locks, settings),
        sqlite=providers.Singleton(
            SqliteExportLocks, providers.Callable(normalise_url, settings.provided.database_url)
        ),
    )
    running_exports = providers.Singleton(RunningExports, locks=export_locks)
    #: What every user keeps only for a while, purged in batches (a transaction each), by one
    #: process at a time.
    purge_lock = providers.Selector(
        backend,
        postgresql=providers.Singleton(_postgres_purge_lock, settings),
        sqlite=providers.Singleton(_sqlite_purge_lock, settings),
    )
    retention = providers.Singleton(SqlRetention, unit_of_work.provider, purge_lock)
    clock = providers.Singleton(SystemClock)
    #: Where webhooks may go, and what sends them (one HTTP client a process).
    webhook_destinations = providers.Singleton(
        WebhookDestinationsChecker, allow_private=settings.provided.webhooks_allow_private_networks
    )
    webhook_sender = providers.Singleton(HttpWebhookSender, webhook_destinations)
    #: Where a reminder that fell due is announced to the users' event streams, in every process.
    reminder_announcer = providers.Selector(
        backend,
        postgresql=providers.Singleton(PostgresReminderAnnouncer, postgres_pool),
        sqlite=providers.Singleton(BrokerReminderAnnouncer, broker),
    )
    #: The calendars this process rendered, reused until their user's data changes.
    calendars = providers.Singleton(RenderedCalendars)

    key_source = providers.Singleton(_key_source, settings)
    identity_verifier = providers.Singleton(
        JwtVerifier,
        key_source=key_source,
        issuer=settings.provided.jwt_issuer,
        audience=settings.provided.jwt_audience,
        user_claim=settings.provided.jwt_user_claim,
        leeway_seconds=settings.provided.jwt_leeway_seconds,
    )
    token_secret = providers.Singleton(_token_secret, settings)
    user_id_hasher = providers.Singleton(UserIdHasher, providers.Callable(_log_key, token_secret))

    #: How many pooled database connections are in use, and how many requests wait for one.
    pool_usage = providers.Selector(
        backend,
        postgresql=providers.Callable(PostgresPool.usage, postgres_pool),
        sqlite=providers.Callable(engine_pool_usage, engine),
    )
    metrics = providers.Singleton(Metrics, pool_usage.provider, providers.Callable(multiprocess_directory))
    rate_limiter = providers.Singleton(_rate_limiter, settings)
    cursor_codec = providers.Singleton(CursorCodec, token_secret)
    sync_tokens = providers.Singleton(SyncTokenCodec, token_secret)
