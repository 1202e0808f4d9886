"""Configuration, from environment variables prefixed `TODO_` (and a `.env` file if present)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Never valid outside development mode: `make run` uses it so that a fresh clone just works.
DEVELOPMENT_SECRET = "development-only-secret-not-for-production-use"
#: Not a setting: the directory `todo serve` gives its workers to share their metrics in. Named
#: by prometheus-client, which reads it when it is imported.
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./todo.db",
        description="postgresql://, postgresql+psycopg://, sqlite:/// or sqlite+aiosqlite:/// URL",
    )
    database_pooler: Literal["none", "transaction"] = Field(
        "none",
        description="PostgreSQL: `transaction` when TODO_DATABASE_URL names a pooler in transaction mode "
        "(PgBouncer's pool_mode = transaction): no prepared statements, no session settings in the startup "
        "packet (see the README, 'Behind a pooler and a load balancer')",
    )
    listen_database_url: str | None = Field(
        None,
        description="PostgreSQL: where the change listener connects (LISTEN needs a session of its own, "
        "which a transaction pooler does not give); default TODO_DATABASE_URL",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connections kept per worker")
    db_timeout_seconds: float = Field(
        5,
        gt=0,
        le=300,
        description="PostgreSQL: the longest a request waits for a pooled connection, and the longest one "
        "statement may run; past it the request gets 503 with Retry-After",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    shutdown_grace_seconds: int = Field(
        10,
        ge=1,
        le=3600,
        description="On SIGTERM, how long requests in flight may take to finish before they are cancelled "
        "and the process exits",
    )
    access_log: bool = Field(True, description="One log line per request (method, route, status, duration)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="The least severe level logged")
    log_format: Literal["json", "text"] | None = Field(
        None, description="One JSON object per line, or text; default: text in development mode, JSON otherwise"
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, GET /metrics requires `Authorization: Bearer <this>`; unset, it is public"
    )
    dev_mode: bool = Field(False, description="Development mode: the built-in secret is allowed")
    jwt_secret: SecretStr | None = Field(None, description="HS256 shared secret (at least 32 bytes)")
    jwks_url: str | None = Field(None, description="JWKS URL, e.g. https://app.example/api/auth/jwks")
    jwt_issuer: str | None = Field(None, description="Required `iss`, checked when set")
    jwt_audience: str | None = Field(None, description="Required `aud`, checked when set")
    jwt_user_claim: str = Field("sub", description="The claim that holds the user id")
    jwt_leeway_seconds: float = Field(30, ge=0, le=300)
    cursor_secret: SecretStr | None = Field(
        None,
        description="Signs page cursors and sync tokens. Default: derived from TODO_JWT_SECRET; "
        "with TODO_JWKS_URL, set it (the same on every replica) or tokens do not survive a restart",
    )
    tombstone_days: float = Field(
        30, gt=0, description="How long sync remembers deletions; a `since` older than what it forgot is 410"
    )
    idempotency_key_hours: float = Field(24, gt=0, description="How long an Idempotency-Key is remembered")
    purge_interval_seconds: float = Field(
        3600,
        gt=0,
        description="How often `todo serve` purges expired tombstones and idempotency keys (each worker tries; "
        "one process of all the replicas purges, the others skip that round)",
    )
    purge_batch_rows: int = Field(
        2000, ge=1, le=100_000, description="The most rows one purge statement deletes (each batch its own transaction)"
    )
    maintain_in_server: bool = Field(
        True,
        description="`todo serve` purges every TODO_PURGE_INTERVAL_SECONDS; false when `todo maintain` is "
        "scheduled instead",
    )
    events_heartbeat_seconds: float = Field(
        15, gt=0, le=300, description="A comment is sent on idle event streams this often, so proxies keep them open"
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413")
    public_url: str | None = Field(
        None,
        description="The URL clients reach this service at, e.g. https://todo.example/api-root: calendar "
        "feed links start with it. Unset: the request's scheme, Host and root_path",
    )
    max_import_bytes: int = Field(
        20_000_000,
        ge=1024,
        description="Larger import documents (POST /api/{user_id}/import) get 413: about 40,000 tasks per 20 MB. "
        "An import is parsed and checked whole, in memory, before it is written in one transaction",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Browser origins allowed to call the API, as JSON: ["https://app.example"]',
    )

    @model_validator(mode="after")
    def _identity_is_configured(self) -> Self:
        if self.jwt_secret is None and self.jwks_url is None:
            if not self.dev_mode:
                raise ValueError(
                    "no way to verify tokens: set TODO_JWKS_URL (Better Auth: <app>/api/auth/jwks) "
                    "or TODO_JWT_SECRET, or TODO_DEV_MODE=1 for the built-in development secret"
                )
            self.jwt_secret = SecretStr(DEVELOPMENT_SECRET)
        if (
            self.jwt_secret is not None
            and self.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET
            and not self.dev_mode
        ):
            raise ValueError("the development secret is refused outside TODO_DEV_MODE=1")
        return self
