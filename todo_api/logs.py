"""Logging: one line per request, every line stamped with the id of the request it was logged in,
as JSON (one object per line, for log collectors) or as text for a developer's terminal.

The standard `logging` throughout (uvicorn's lines, the libraries', ours), formatted by
python-json-logger: the one format applies to every logger without adapting them.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import re
import secrets
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

from todo_api.settings import Settings

#: The id of the request being handled, set by `RequestPipeline` for the request's duration.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The line per request.
ACCESS_LOGGER = logging.getLogger("todo.access")
#: What `X-Request-ID` may hold to be taken over (a UUID, a trace id, a load balancer's id):
#: bounded, and nothing that could break a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


#: New request ids: a random prefix per process and a counter, unique across processes and
#: replicas like a random UUID, without a system call for randomness per request.
_PROCESS_PREFIX = secrets.token_hex(8)
_NEXT_NUMBER = itertools.count(1)


def request_id(given: bytes | None) -> str:
    """The client's `X-Request-ID` if it is safe to carry, else a new one (32 hex digits)."""
    if given is not None:
        text = given.decode("latin-1")
        if _SAFE_REQUEST_ID.fullmatch(text):
            return text
    return f"{_PROCESS_PREFIX}{next(_NEXT_NUMBER):016x}"


def lighten_log_records() -> None:
    """Stop every log record from looking up what no line shows: the calling frame (file, line,
    function), thread and process names. A record costs about a third less (the "Optimization"
    section of Python's logging HOWTO names these switches)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class UserIdHasher:
    """A user id as logs show it: a keyed hash, the same for one user on every worker and replica
    that share the key, which says nothing of the id without the key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, user_id: str) -> str:
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:16]


class RequestContext(logging.Filter):
    """Stamps every record with `request_id`: the id of the request it was logged in, or
    `missing` outside any request (start-up, background work)."""

    def __init__(self, missing: str | None = None) -> None:
        super().__init__()
        self._missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or self._missing
        return True


def log_format(settings: Settings) -> str:
    """ "json" or "text": as configured, else text in development mode and JSON otherwise."""
    return settings.log_format or ("text" if settings.dev_mode else "json")


def logging_config(settings: Settings) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a server process (uvicorn applies it in each worker)."""
    json = log_format(settings) == "json"
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": ["levelname", "name", "message", "request_id"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            # uvicorn adds a copy of some messages with terminal colours: not for a log collector.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            "timestamp": "time",
        }
        if json
        else {"format": _TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestContext, "missing": None if json else "-"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        # uvicorn's loggers come with handlers of their own: through ours instead.
        "loggers": {
            name: {"level": settings.log_level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
