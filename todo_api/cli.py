"""The `todo` command: serve the API, migrate the database, mint a development token, print the
OpenAPI document."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging.config
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from todo_adapters.auth import mint_token
from todo_api.logs import logging_config
from todo_api.settings import (
    DEMO_TOKEN_SECONDS,
    DEMO_USER,
    MULTIPROCESS_DIRECTORY,
    InvalidSettings,
    Settings,
    default_settings,
    load_settings,
)
from todo_core.errors import StorageUnavailable

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="todo", description="A multi-user task API.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API (TODO_HOST, TODO_PORT, TODO_WORKERS)")
    commands.add_parser("migrate", help="upgrade the database at TODO_DATABASE_URL to the newest schema")
    token = commands.add_parser("token", help="mint a development token with TODO_JWT_SECRET")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    commands.add_parser("openapi", help="print the OpenAPI document the server serves at /openapi.json")
    maintain = commands.add_parser(
        "maintain", help="purge expired tombstones and idempotency keys (once, or --every SECONDS)"
    )
    maintain.add_argument("--every", type=float, metavar="SECONDS", help="purge again every SECONDS, until stopped")
    commands.add_parser("mcp", help="serve the MCP tools on stdio for the user of the token in TODO_TOKEN")
    commands.add_parser("worker", help="deliver webhooks until stopped (with TODO_WEBHOOKS_IN_SERVER=false)")
    arguments = parser.parse_args(argv)

    if arguments.command == "openapi":
        # The document describes the API, not a server: no setting changes it, none is needed.
        print(openapi_document(default_settings()))
        return 0
    try:
        settings = load_settings()
    except InvalidSettings as error:
        # Before anything binds or connects; an exit status of 2, as for a bad command line.
        for problem in error.problems:
            print(f"todo: {problem}", file=sys.stderr)
        return 2
    match arguments.command:
        case "serve":
            return _serve(settings)
        case "migrate":
            try:
                before, after = migrate(settings.database_url)
            except DBAPIError as error:
                # Unreachable, refused, a file that cannot be opened: the driver's first line says which.
                reason = str(error.orig).splitlines()[0] if error.orig is not None else type(error).__name__
                print(f"todo: TODO_DATABASE_URL: cannot migrate the database: {reason}", file=sys.stderr)
                return 1
            print(_migrated(before, after))
            return 0
        case "token":
            if settings.jwt_secret is None:
                print("todo: token needs TODO_JWT_SECRET (or TODO_DEV_MODE=1)", file=sys.stderr)
                return 2
            print(_token(settings, arguments.user_id, arguments.ttl))
            return 0
        case "maintain":
            if arguments.every is not None and arguments.every <= 0:
                print("todo: --every needs a number of seconds above 0", file=sys.stderr)
                return 2
            logging.config.dictConfig(logging_config(settings))
            return asyncio.run(_maintain(settings, arguments.every))
        case "mcp":
            return _mcp(settings)
        case "worker":
            logging.config.dictConfig(logging_config(settings))
            return asyncio.run(_work(settings))
    return 2


def migrate(database_url: str) -> tuple[str | None, str | None]:
    """Upgrade the database to the newest revision; return the revisions before and after
    (None: no schema)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")
    before, after = config.attributes["revisions"]
    return before, after


def _migrated(before: str | None, after: str | None) -> str:
    if before == after:
        return f"todo: the database is up to date (revision {after})"
    if before is None:
        return f"todo: made the schema (revision {after})"
    return f"todo: upgraded the database from revision {before} to {after}"


def _token(settings: Settings, user_id: str, ttl: int) -> str:
    assert settings.jwt_secret is not None
    return mint_token(
        settings.jwt_secret.get_secret_value(),
        user_id,
        ttl_seconds=ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _serve(settings: Settings) -> int:
    if settings.workers == 1:
        os.environ.pop(MULTIPROCESS_DIRECTORY, None)
        return _run_uvicorn(settings)
    # The workers count into files of a directory of their own (prometheus-client's
    # multiprocess mode, chosen when it is imported: the workers are started after this), so
    # that a scrape answered by any worker reports the whole server. A fresh directory per
    # start: values of an earlier run must not be added in.
    directory = tempfile.mkdtemp(prefix="todo-metrics-")
    os.environ[MULTIPROCESS_DIRECTORY] = directory
    try:
        return _run_uvicorn(settings)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_uvicorn(settings: Settings) -> int:
    import uvicorn

    if settings.cursor_secret is None and settings.jwt_secret is None:
        # Every worker process must sign and check page cursors and sync tokens with the same
        # key, and with a JWKS there is no shared secret to derive it from: the workers
        # inherit one from here. (Replicas on other machines need TODO_CURSOR_SECRET set.)
        os.environ["TODO_CURSOR_SECRET"] = secrets.token_urlsafe(32)

    if settings.signs_with_the_development_secret:
        base = f"http://{settings.host}:{settings.port}"
        print(
            "\n  DEVELOPMENT MODE: tokens are signed with a built-in secret. Never expose this server.\n"
            f"  A token for '{DEMO_USER}', valid for {DEMO_TOKEN_SECONDS // 3600} hours:\n\n"
            f"    export TOKEN={_token(settings, DEMO_USER, DEMO_TOKEN_SECONDS)}\n"
            f"    export API={base}/api/{DEMO_USER}\n"
            '    curl -H "Authorization: Bearer $TOKEN" $API/tasks\n\n'
            f"  API docs: {base}/docs (authorised as '{DEMO_USER}')\n",
            flush=True,
        )
    uvicorn.run(
        "todo_api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        proxy_headers=False,  # the app believes forwarded headers itself (TODO_FORWARDED_ALLOW_IPS)
        # The line per request is the app's own (todo_api/logs.py), with its route and request id.
        access_log=False,
        log_config=logging_config(settings),
        # On SIGTERM uvicorn stops accepting connections and waits for the open ones to finish
        # their responses (streams included); past this it cancels what still runs and exits.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    return 0


async def _maintain(settings: Settings, every: float | None) -> int:
    from todo_api.container import Container
    from todo_api.maintenance import described, purge_once, purge_periodically

    container = Container(settings=settings)
    try:
        if every is not None:
            await purge_periodically(container, settings, interval=every, first_wait=0)
        try:
            print(f"todo: {described(await purge_once(container, settings))}")
        except StorageUnavailable as error:
            print(f"todo: {error}", file=sys.stderr)
            return 1
        return 0
    finally:
        if container.backend() == "postgresql":
            await container.postgres_pool().close()
        else:
            await container.engine().dispose()


def _mcp(settings: Settings) -> int:
    from todo_api.assistant import serve_stdio
    from todo_api.container import Container
    from todo_core.errors import AuthenticationFailed

    token = os.environ.get("TODO_TOKEN", "").strip()
    if not token:
        print("todo: mcp needs the user's bearer token in TODO_TOKEN", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_stdio(Container(settings=settings), token))
    except AuthenticationFailed:
        print("todo: the token in TODO_TOKEN is not accepted (expired, or not for this service)", file=sys.stderr)
        return 2
    return 0


async def _work(settings: Settings) -> int:
    from todo_api.container import Container
    from todo_api.maintenance import deliver_periodically

    container = Container(settings=settings)
    postgres = container.backend() == "postgresql"
    if postgres:
        container.change_listener().start()  # what wakes the loop when a server writes an event
    try:
        await deliver_periodically(container, settings)
    finally:
        await container.webhook_sender().aclose()
        if postgres:
            await container.change_listener().stop()
            await container.postgres_pool().close()
        else:
            await container.engine().dispose()
    return 0


def openapi_document(settings: Settings) -> str:
    """The OpenAPI document `todo serve` serves with these settings, as JSON."""
    from todo_api.app import create_app

    return json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False)
