"""Time zones: IANA names (`Europe/Berlin`), as `zoneinfo` knows them.

`zoneinfo` reads the system's database, or the `tzdata` package where there is none, so a name
is valid on every machine the service runs on.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, date, datetime, time

from todo_core.errors import FieldError

#: What a user and their tasks have until they choose: the behaviour from before time zones.
DEFAULT = "UTC"


@functools.cache
def _names() -> frozenset[str]:
    # The exact names: `ZoneInfo` alone would also load "europe/berlin" on a case-insensitive
    # file system, and a name spelled two ways would be two zones to every comparison.
    return frozenset(zoneinfo.available_timezones() | {DEFAULT})


def zone_error(field: str, name: str) -> FieldError | None:
    """None if `name` is an IANA time zone, else the error a client should see for it."""
    if name not in _names():
        return FieldError(field, "is not an IANA time zone name, e.g. Europe/Berlin or UTC")
    return None


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of a name `zone_error` accepted (zoneinfo caches each)."""
    return zoneinfo.ZoneInfo(name)


def local_wall_time(moment: datetime, name: str) -> datetime:
    """The instant as a clock on the wall in that zone shows it: naive, `fold` marking the
    second of two equal readings when the clocks go back."""
    return moment.astimezone(zone(name)).replace(tzinfo=None)


def instant_of_wall_time(wall: datetime, name: str) -> datetime:
    """The UTC instant of a wall-clock reading in that zone, as RFC 5545 §3.3.5 reads one: a
    reading the clocks skip (02:30 when they go from 02:00 to 03:00) is read with the offset
    from before the gap, and so moves forward by the gap (03:30); a reading that happens twice
    (when they go back) is the first. `fold=0` in Python's `zoneinfo` is exactly that (PEP 495).
    """
    return wall.replace(tzinfo=zone(name), fold=0).astimezone(UTC)


def start_of_day(day: date, name: str) -> datetime:
    """The UTC instant a day begins in that zone: its midnight, or the first instant after it
    where the clocks skip midnight (as `instant_of_wall_time` reads a skipped reading)."""
    return instant_of_wall_time(datetime.combine(day, time()), name)
