"""VTIMEZONE components (RFC 5545 §3.6.5) from the time zone database `zoneinfo` reads.

A zone's rule of today is the POSIX TZ string at the end of its TZif file (RFC 8536 §3.3): it
becomes one STANDARD and one DAYLIGHT observance with a yearly RRULE, which stays right for
every year after the file's last listed transition (2037 and later included). The transitions
before that rule took over are irregular history: they are listed, one `RDATE` value per line
(calendar apps such as Thunderbird read only the first value of a multi-valued RDATE), and only
from the transition in effect at the earliest instant the calendar uses in that zone.

`icalendar`'s own `Timezone.from_tzinfo` lists transitions only, up to a fixed last date, with
multi-valued RDATEs and a top-level COMMENT: readers go wrong after that date.
"""

from __future__ import annotations

import functools
import re
import struct
import zoneinfo
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta
from importlib import resources

from icalendar import Timezone, TimezoneDaylight, TimezoneStandard, vRecur

_EPOCH = datetime(1970, 1, 1)
_WEEKDAYS = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]  # POSIX counts from Sunday (0)
_DAY = 86400
#: How many years of a yearly change no RRULE can express are listed, one RDATE each.
_LISTED_YEARS = 100
_NAME = r"(?:<[^>]+>|[A-Za-z]{3,})"
_OFFSET = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_POSIX = re.compile(
    rf"^(?P<std>{_NAME})(?P<std_offset>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dst_offset>{_OFFSET})?,(?P<start>[^,]+),(?P<end>[^,]+))?$"
)
_MONTH_RULE = re.compile(rf"^M(\d{{1,2}})\.([1-5])\.([0-6])(?:/({_OFFSET}))?$")


@dataclass(frozen=True, slots=True)
class _Transition:
    """A change of a zone's offset: at `at` (UTC seconds) from `before` to `after` (seconds east)."""

    at: int
    before: int
    after: int
    dst: bool
    name: str

    @property
    def local_start(self) -> datetime:
        """When it happens on the wall clock before it (how DTSTART and RDATE give it)."""
        return _EPOCH + timedelta(seconds=self.at + self.before)

    @property
    def kind(self) -> tuple[int, int, bool, str]:
        return self.before, self.after, self.dst, self.name


@dataclass(frozen=True, slots=True)
class _YearlyChange:
    """One change of a POSIX rule: month, week (5: the last), weekday (0: Sunday), local time."""

    month: int
    week: int
    weekday: int
    seconds: int
    before: int
    after: int
    dst: bool
    name: str

    def in_year(self, year: int) -> _Transition:
        first = date(year, self.month, 1)
        day = 1 + (self.weekday - (first.weekday() + 1) % 7) % 7 + 7 * (self.week - 1)
        while day > _month_length(year, self.month):
            day -= 7
        at = int((datetime(year, self.month, day) - _EPOCH).total_seconds()) + self.seconds - self.before
        return _Transition(at, self.before, self.after, self.dst, self.name)

    def rrule(self) -> vRecur:
        """The yearly RRULE of this change, for DTSTART at the change's local time of day."""
        shift = self.seconds // _DAY  # POSIX allows times from -167 to 167 hours
        weekday = _WEEKDAYS[(self.weekday + shift) % 7]
        if shift == 0:
            return vRecur(freq="YEARLY", bymonth=self.month, byday=f"{-1 if self.week == 5 else self.week}{weekday}")
        # The weekday after (or before) the nth weekday: among the seven days that follow it.
        first = -7 if self.week == 5 else 7 * (self.week - 1) + 1
        days = [first + offset + shift for offset in range(7)]
        if self.month == 2 or not all(1 <= day <= 28 or -28 <= day <= -1 for day in days):
            raise ValueError(f"a change of {self} crosses the end of its month")
        # Counted from the month's start: ical.js gets negative BYMONTHDAYs beside BYDAY wrong.
        length = _month_length(2001, self.month)  # the same in every year but for February
        days = [day if day > 0 else length + 1 + day for day in days]
        return vRecur(freq="YEARLY", bymonth=self.month, byday=weekday, bymonthday=days)


@dataclass(frozen=True, slots=True)
class _ZoneData:
    transitions: tuple[_Transition, ...]
    initial: tuple[int, bool, str]  # the offset, dst and name before the first transition
    rule: tuple[_YearlyChange, _YearlyChange] | None  # None: a fixed offset after the last


def vtimezone(key: str, since: datetime) -> Timezone:
    """The VTIMEZONE of zone `key` (an IANA name `zoneinfo` loads), right from the instant
    `since` (aware) on, for ever."""
    data = _zone_data(key)
    regular_from = _regular_from(key)
    irregular = [change for change in data.transitions if change.at < regular_from]
    moment = int(since.timestamp())
    in_effect = [change.at for change in irregular if change.at <= moment]
    if data.rule is not None:
        year = since.astimezone(UTC).year
        in_effect += [
            change.at
            for change in (rule.in_year(y) for rule in data.rule for y in _years(year - 1, year + 1))
            if regular_from <= change.at <= moment
        ]
    start = max(in_effect, default=None)
    component = Timezone()
    component.add("tzid", key)
    if start is None:  # nothing changed before `since`: the offset from before the first change
        offset, dst, name = data.initial
        before_all = datetime(min(1970, max(since.year - 1, MINYEAR)), 1, 1)
        component.add_component(_observance(before_all, offset, offset, dst, name))
        start = moment
    groups: dict[tuple[int, int, bool, str], list[datetime]] = {}
    for change in irregular:
        if change.at >= start:
            groups.setdefault(change.kind, []).append(change.local_start)
    for (before, after, dst, name), starts in groups.items():
        observance = _observance(starts[0], before, after, dst, name)
        if len(starts) > 1:
            # One value a line; DTSTART's onset again too: ical.js reads an observance with
            # RDATEs as their onsets alone (RFC 5545 counts DTSTART in the set, once).
            for onset in starts:
                observance.add("rdate", onset)
        component.add_component(observance)
    if data.rule is not None:
        first_year = _utc_year(max(start, regular_from)) - 1
        for rule in data.rule:
            first = next(
                (
                    change
                    for change in (rule.in_year(y) for y in _years(first_year, first_year + 3))
                    if change.at >= max(start, regular_from)
                ),
                None,
            )
            if first is None:  # the end of the year 9999 comes first
                continue
            observance = _observance(first.local_start, rule.before, rule.after, rule.dst, rule.name)
            try:
                observance.add("rrule", rule.rrule())
            except ValueError:  # Cairo's "Friday after the last Thursday" may be in the next month
                for year in _years(_utc_year(first.at), _utc_year(first.at) + _LISTED_YEARS):
                    observance.add("rdate", rule.in_year(year).local_start)  # DTSTART's too, for ical.js
            component.add_component(observance)
    return component


def _observance(start: datetime, before: int, after: int, dst: bool, name: str) -> TimezoneStandard | TimezoneDaylight:
    observance = TimezoneDaylight() if dst else TimezoneStandard()
    observance.add("tzname", name)
    observance.add("dtstart", start)
    observance.add("tzoffsetfrom", timedelta(seconds=before))
    observance.add("tzoffsetto", timedelta(seconds=after))
    return observance


@functools.cache
def _regular_from(key: str) -> int:
    """The first instant (UTC seconds) from which the zone's POSIX rule gives every change."""
    data = _zone_data(key)
    if data.rule is None:
        return (data.transitions[-1].at + 1) if data.transitions else 0
    rule = data.rule
    index = len(data.transitions)
    following: _Transition | None = None  # the change after, if the file lists it
    while index > 0:
        change = data.transitions[index - 1]
        year = _utc_year(change.at)
        expected = sorted(
            (yearly.in_year(y) for yearly in rule for y in (year - 1, year, year + 1, year + 2)),
            key=lambda each: each.at,
        )
        if change not in expected:
            break
        after = expected[expected.index(change) + 1]
        if following is not None and after != following:
            break  # the rule would change the offset in between: a year without it (Riga, 2000)
        following = change
        index -= 1
    if index < len(data.transitions):
        return data.transitions[index].at
    return (data.transitions[-1].at + 1) if data.transitions else 0


def _years(first: int, stop: int) -> range:
    """The years from `first` up to `stop` (excluded) that `datetime` can hold."""
    return range(max(first, MINYEAR), min(stop, MAXYEAR + 1))


def _utc_year(seconds: int) -> int:
    return (_EPOCH + timedelta(seconds=seconds)).year


def _month_length(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


@functools.cache
def _zone_data(key: str) -> _ZoneData:
    return _parse_tzif(_tzif_bytes(key))


def _tzif_bytes(key: str) -> bytes:
    """The TZif file `zoneinfo.ZoneInfo(key)` reads: the first on TZPATH, else `tzdata`'s."""
    for directory in zoneinfo.TZPATH:
        try:
            with open(f"{directory}/{key}", "rb") as file:
                return file.read()
        except OSError:
            continue
    package, _, name = f"tzdata.zoneinfo.{key.replace('/', '.')}".rpartition(".")
    return resources.files(package).joinpath(name).read_bytes()


def _parse_tzif(data: bytes) -> _ZoneData:
    """RFC 8536: the version 2+ data block (64-bit times) and the footer's TZ string."""
    header = struct.Struct(">4sc15x6l")
    magic, version, *counts = header.unpack_from(data)
    if magic != b"TZif" or version == b"\x00":
        raise ValueError("not a TZif file of version 2 or later")
    is_ut, is_std, leaps, times, types, chars = counts
    position = header.size + times * 5 + types * 6 + chars + leaps * 8 + is_std + is_ut
    _, _, is_ut, is_std, leaps, times, types, chars = header.unpack_from(data, position)
    position += header.size
    instants = struct.unpack_from(f">{times}q", data, position)
    position += times * 8
    indexes = data[position : position + times]
    position += times
    kinds = [struct.unpack_from(">lBB", data, position + 6 * index) for index in range(types)]
    position += types * 6
    names = data[position : position + chars]
    position += chars + leaps * 12 + is_std + is_ut
    footer = data[position:].strip(b"\n").decode("ascii")

    def kind(index: int) -> tuple[int, bool, str]:
        offset, dst, name_at = kinds[index]
        return offset, bool(dst), names[name_at : names.index(b"\x00", name_at)].decode("ascii")

    initial = kind(0)
    transitions = []
    current = initial
    for at, index in zip(instants, indexes, strict=True):
        following = kind(index)
        if following != current:  # zic writes no-op transitions too (e.g. at 2038-01-19)
            transitions.append(_Transition(at, current[0], *following))
            current = following
    return _ZoneData(tuple(transitions), initial, _posix_rule(footer))


def _posix_rule(text: str) -> tuple[_YearlyChange, _YearlyChange] | None:
    """The two yearly changes of a POSIX TZ string, or None for a fixed offset (or none given)."""
    found = _POSIX.match(text)
    if found is None or found["dst"] is None:
        return None
    standard = -_seconds(found["std_offset"])
    daylight = -_seconds(found["dst_offset"]) if found["dst_offset"] else standard + 3600
    names = found["std"].strip("<>"), found["dst"].strip("<>")
    to_daylight = _change(found["start"], standard, daylight, True, names[1])
    to_standard = _change(found["end"], daylight, standard, False, names[0])
    return to_daylight, to_standard


def _change(text: str, before: int, after: int, dst: bool, name: str) -> _YearlyChange:
    found = _MONTH_RULE.match(text)
    if found is None:
        raise ValueError(f"unsupported POSIX TZ rule {text!r} (only Mm.w.d)")
    seconds = _seconds(found[4]) if found[4] else 7200
    return _YearlyChange(int(found[1]), int(found[2]), int(found[3]), seconds, before, after, dst, name)


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(part) for part in text.lstrip("+-").split(":")]
    hours, minutes, seconds = [*parts, 0, 0][:3]
    return sign * (hours * 3600 + minutes * 60 + seconds)
