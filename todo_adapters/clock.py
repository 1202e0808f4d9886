"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """Reads the system's time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
