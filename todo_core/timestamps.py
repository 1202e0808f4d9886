"""Instants in time: every datetime the domain keeps is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from todo_core.errors import FieldError


def as_utc(field: str, value: datetime) -> datetime | FieldError:
    """Return `value` in UTC, or the error a client should see for it."""
    if value.tzinfo is None or value.utcoffset() is None:
        return FieldError(field, "must include a timezone offset, e.g. 2026-01-31T09:00:00Z")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return FieldError(field, "is outside the supported range of dates")
