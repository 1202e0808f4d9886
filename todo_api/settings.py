"""Configuration, from environment variables prefixed `TODO_` (and a `.env` file if present)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError
from sqlalchemy.exc import ArgumentError

from todo_adapters.auth.keys import MIN_SECRET_BYTES
from todo_adapters.sqlalchemy.engine import normalise_url
from todo_api.rate_limits import parse_limits
from todo_core.use_cases.calendar import CALENDAR_COMPLETED_DAYS, CALENDAR_MAX_TASKS

# Never valid outside development mode: `make run` uses it so that a fresh clone just works.
DEVELOPMENT_SECRET = "development-only-secret-not-for-production-use"
#: Every setting is read from its name in capitals after this prefix: `TODO_JWT_SECRET`.
ENV_PREFIX = "TODO_"
#: The user `make run` prints a token for, and whom /docs is authorised as in development mode.
DEMO_USER = "demo-user"
#: How long the demo user's tokens last.
DEMO_TOKEN_SECONDS = 12 * 3600
#: Not a setting: the directory `todo serve` gives its workers to share their metrics in. Named
#: by prometheus-client, which reads it when it is imported.
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
#: Whose forwarded headers are believed unless TODO_FORWARDED_ALLOW_IPS says otherwise: a proxy on
#: the same machine (and uvicorn's own default).
LOOPBACK = ("127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Generous for one person's devices: a page load (~10 requests) on five devices at once, each
#: syncing after every change, stays well under; so does 20 requests a second for a minute.
DEFAULT_RATE_LIMITS = "30/second;1200/minute"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./todo.db",
        description="postgresql://, postgresql+psycopg://, sqlite:/// or sqlite+aiosqlite:/// URL",
    )
    database_pooler: Literal["none", "transaction"] = Field(
        "none",
        description="PostgreSQL: `transaction` when TODO_DATABASE_URL names a pooler in transaction mode "
        "(PgBouncer's pool_mode = transaction): no prepared statements, no session settings in the startup "
        "packet (see docs/operations.md, 'Behind a pooler and a load balancer')",
    )
    listen_database_url: str | None = Field(
        None,
        description="PostgreSQL: where the change listener and the export locks connect (LISTEN and "
        "session-level advisory locks need a session of their own, which a transaction pooler does not give); "
        "default TODO_DATABASE_URL",
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
    calendar_max_tasks: int = Field(
        CALENDAR_MAX_TASKS,
        ge=1,
        le=100_000,
        description="The most tasks (VTODOs) one calendar or feed holds: open tasks first, soonest due first, "
        "then recently completed ones, most recently changed first",
    )
    calendar_completed_days: int = Field(
        CALENDAR_COMPLETED_DAYS,
        ge=0,
        le=3650,
        description="Calendars with completed tasks (feeds, `status=all` or `completed`) show those completed "
        "in the last this many days (whole UTC days)",
    )
    max_import_bytes: int = Field(
        20_000_000,
        ge=1024,
        description="Larger import documents (POST /api/{user_id}/import) get 413: about 40,000 tasks per 20 MB. "
        "An import is parsed and checked whole, in memory, before it is written in one transaction",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API, with credentials: `scheme://host[:port]`, "
        'separated by commas or spaces, or as a JSON list (`["https://app.example"]`); `*` alone: any '
        "origin, without credentials",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK),
        description="The addresses (or networks, `10.0.0.0/8`) of the proxies whose `X-Forwarded-Proto` and "
        "`X-Forwarded-For` are believed (the scheme and client address the service sees, and so the calendar "
        "feed links it builds), separated by commas or spaces; `*`: any. Default: loopback only",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        origins = _listed(value)
        if "*" in origins and len(origins) > 1:
            raise ValueError("`*` (any origin) must stand alone: it cannot be combined with listed origins")
        return [origin if origin == "*" else _origin(origin) for origin in origins]

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        addresses = _listed(value)
        if "*" in addresses and len(addresses) > 1:
            raise ValueError("`*` (any proxy) must stand alone")
        for address in addresses:
            if address != "*":
                try:
                    ipaddress.ip_network(address)
                except ValueError as error:
                    raise ValueError(f"{address!r} is not an IP address or network like 10.0.0.0/8 ({error})") from None
        return addresses

    @property
    def signs_with_the_development_secret(self) -> bool:
        """Development mode with its built-in secret: the service may hand out demo tokens."""
        return self.jwt_secret is not None and self.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET

    # Per-user fairness (todo_api/rate_limits.py, docs/limits.md).
    rate_limits: str = Field(
        DEFAULT_RATE_LIMITS,
        description="Requests per user (per calendar feed URL for /feeds/), in the `limits` library's notation: "
        "`30/second;1200/minute`; `none` turns them off. Beyond them: 429 with Retry-After and RateLimit headers",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db: rate-limit counters shared by every replica there; unset, each "
        "process counts its own",
    )
    redis_key_prefix: str = Field("todo", min_length=1, description="The prefix of this service's keys in Redis")
    max_tasks: int = Field(
        100_000,
        ge=1,
        description="Tasks one user may have (completed ones included); a create, batch or import beyond is a 409",
    )
    max_calendar_feeds: int = Field(20, ge=1, description="Calendar subscription links one user may have (409 beyond)")
    max_event_streams: int = Field(
        10, ge=1, description="Event streams one user may have open at once on one server process (429 beyond)"
    )
    max_webhooks: int = Field(10, ge=1, description="Webhook endpoints one user may have (409 beyond)")
    webhooks_allow_private_networks: bool = Field(
        False,
        description="Let webhooks go to loopback, private and link-local addresses (intranets, tests); "
        "otherwise such a URL is refused (422) and never called",
    )
    webhooks_in_server: bool = Field(
        True,
        description="`todo serve` delivers webhooks (each worker; every delivery by one of them); false when "
        "`todo worker` runs instead",
    )
    webhooks_poll_seconds: float = Field(
        4.0,
        gt=0,
        le=60,
        description="The longest the delivery loop waits before it looks at the outbox again when nothing wakes it "
        "(a committed event wakes it at once, a reminder or retry when due): the safety net for a lost wake-up",
    )
    webhooks_lease_seconds: float = Field(
        120.0,
        ge=15,
        le=3600,
        description="How long a claimed delivery is left to the process that claimed it: one that died mid-delivery "
        "has it sent again after this (it must outlast an attempt, 10 s at most)",
    )
    webhook_history_hours: float = Field(
        72.0,
        gt=0,
        description="How long a delivery that was delivered or given up stays in its endpoint's deliveries list, "
        "before the purge forgets it",
    )

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits_parse(cls, notation: str) -> str:
        parse_limits(notation)  # a ValueError names what does not parse
        return notation

    @field_validator("jwt_secret", "cursor_secret", "metrics_token")
    @classmethod
    def _secret_is_not_empty(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and not secret.get_secret_value():
            raise ValueError("is empty: give it a value, or leave it unset")
        return secret

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_is_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        length = 0 if secret is None else len(secret.get_secret_value().encode())
        if secret is not None and length < MIN_SECRET_BYTES:
            # The verifier would refuse it at the first request (RFC 7518 §3.2): refuse it now.
            raise ValueError(
                f"is {length} bytes long; an HS256 secret needs at least {MIN_SECRET_BYTES} "
                "(make one with `openssl rand -base64 48`)"
            )
        return secret

    @field_validator("database_url", "listen_database_url")
    @classmethod
    def _database_url_is_supported(cls, url: str | None) -> str | None:
        if url is not None:
            try:
                normalise_url(url)
            except ArgumentError:
                raise ValueError("is not a database URL: use postgresql://… or sqlite:///path") from None
        return url

    @field_validator("jwks_url", "public_url")
    @classmethod
    def _is_an_http_url(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("is not an http:// or https:// URL")
        return url

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, level: Any) -> Any:
        return level.upper() if isinstance(level, str) else level

    @model_validator(mode="after")
    def _identity_is_configured(self) -> Self:
        if self.jwt_secret is None and self.jwks_url is None:
            if not self.dev_mode:
                raise ValueError(
                    "TODO_JWKS_URL and TODO_JWT_SECRET: neither is set, so no token can be verified: set "
                    "TODO_JWKS_URL (Better Auth: <app>/api/auth/jwks) or TODO_JWT_SECRET, or TODO_DEV_MODE=1 "
                    "for the built-in development secret"
                )
            self.jwt_secret = SecretStr(DEVELOPMENT_SECRET)
        if (
            self.jwt_secret is not None
            and self.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET
            and not self.dev_mode
        ):
            raise ValueError("TODO_JWT_SECRET: the development secret is refused outside TODO_DEV_MODE=1")
        return self


def _listed(value: object) -> list[str]:
    """A list setting's items: from a JSON list, or from a string split at commas and spaces."""
    if not isinstance(value, str):
        return value  # type: ignore[return-value]  # given in Python: pydantic checks it
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as error:
            raise ValueError(f"not a JSON list ({error}); or give the items separated by commas or spaces") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("a JSON list of strings is expected")
        return [item.strip() for item in items]
    return [item for item in re.split(r"[\s,]+", text) if item]


def _origin(text: str) -> str:
    """An origin as browsers send it in `Origin`: `scheme://host[:port]`, lower case, without
    the scheme's default port (anything else would never match)."""
    expected = f"{text!r} is not an origin: scheme://host[:port] is expected, like http://localhost:3000"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(expected) from None
    if not parts.scheme or not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError(expected)
    if parts.path or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{expected} (without a path, not even `/`)")
    scheme, host = parts.scheme.lower(), parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class InvalidSettings(Exception):
    """The environment's settings cannot be used. `problems` says why, one line each, every
    setting named by its environment variable (`TODO_PORT: …`)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def load_settings() -> Settings:
    """The settings of the environment (and `.env`), checked whole.

    :raises InvalidSettings: a setting is malformed, out of range, or contradicts another.
    """
    try:
        return Settings()
    except ValidationError as error:
        raise InvalidSettings([_problem(details) for details in error.errors()]) from None
    except SettingsError as error:
        # pydantic-settings could not even parse a value (a complex field's JSON): it names the
        # field only in its message, and says what was wrong in the error it wraps.
        named = re.search(r'field "(\w+)"', str(error))
        setting = _variable(named.group(1)) if named else "a setting"
        cause = f": {error.__cause__}" if error.__cause__ is not None else ""
        raise InvalidSettings([f"{setting}: cannot be parsed{cause}"]) from None


#: Settings whose values are never repeated in a message: secrets, and URLs that may hold a password.
_UNREPEATABLE = frozenset({"jwt_secret", "cursor_secret", "metrics_token", "database_url", "listen_database_url"})


def _problem(details: ErrorDetails) -> str:
    message = details["msg"].removeprefix("Value error, ")
    location = details["loc"]
    if not location:  # a rule across settings: its message names them
        return message
    field, *within = location
    setting = _variable(str(field)) + "".join(f"[{part}]" for part in within)
    given = details.get("input")
    if field not in _UNREPEATABLE and isinstance(given, str | int | float) and details["type"] != "missing":
        message = f"{message} (got {given!r})"
    return f"{setting}: {message[:1].lower()}{message[1:]}"


def _variable(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class _DefaultsOnly(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def default_settings() -> Settings:
    """The defaults alone, in development mode, whatever the environment holds: enough to describe
    the API (`todo openapi`) without configuring a server."""
    return _DefaultsOnly(dev_mode=True)
