"""Calendars that cost nothing while unchanged: entity tags from the user's change number, and the
rendered bodies reused until it moves.

A calendar is a function of the user's tasks and categories (each change of which takes the
user's next change number, `todo_core.sync`), of what it selects (`CalendarSelection`: the status,
the completion window, the bound) and of the code that renders it. So the pair (user, change
number) with those identifies the body without reading it: a conditional GET costs one read of
one row, and a body rendered once serves every request until the number moves.

The number is read before the tasks, so a body is never older than the number it is stored
under: a change committed in between makes the next request's number differ, and it renders
again. Nothing here depends on the process (no hash seed, no clock finer than the selection's
day): every worker and replica gives the same tag for the same calendar.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.metadata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from todo_api import ical
from todo_core.use_cases.calendar import CalendarSelection, CalendarTasks


def _render_format() -> str:
    """What, besides the data, decides a calendar's bytes: the renderer's own code, the library
    it writes with and the time-zone data its VTIMEZONEs come from. A release that changes any of
    them changes every tag, so no client keeps a copy the new code would render otherwise."""
    digest = hashlib.sha256(Path(ical.__file__).read_bytes())
    for package in ("icalendar", "tzdata"):
        try:
            digest.update(f"\0{package} {importlib.metadata.version(package)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"\0{package} none".encode())
    return digest.hexdigest()


RENDER_FORMAT = _render_format()


@dataclass(frozen=True, slots=True)
class CalendarKey:
    """One calendar as it is at one change number of its user's."""

    user_id: str
    change_number: int
    selection: CalendarSelection

    @property
    def entity_tag(self) -> str:
        """A strong ETag: the same for the same calendar in every process, different for every
        other user, change number, selection or renderer."""
        selection = self.selection
        since = selection.completed_since.isoformat() if selection.completed_since is not None else "-"
        parts = [RENDER_FORMAT, self.user_id, str(self.change_number), selection.status.value, since]
        parts.append(str(selection.max_tasks))
        digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return f'"{digest[:32]}"'


#: A process keeps at most this many rendered calendars, and this many bytes of them (a
#: 2,000-task calendar is about 1 MB); the least recently used go first.
CACHE_ENTRIES = 128
CACHE_BYTES = 16 * 2**20


def _rendered(content: CalendarTasks) -> bytes:
    """The calendar's bytes, made with the cyclic garbage collector paused. A render allocates a
    few hundred thousand short-lived objects: with the collector on, they set off full collections
    that scan the whole heap while holding the GIL (0.5-1 s seen), and the event loop, which needs
    the GIL too, stops for as long. Almost all of them are freed by reference counting the moment
    the render ends; the few cycles left are collected later, as usual."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return ical.calendar_bytes(content)
    finally:
        if paused:
            gc.enable()


class RenderedCalendars:
    """The calendars this process rendered, by user and selection, each with the change number
    it was rendered at: a request at that number gets it again; one at a newer number renders
    (once, however many requests ask at the same time) and replaces it. Bounded by `max_entries`
    and `max_bytes`, least recently used first out.

    Rendering (CPU only: the tasks are read before) runs in a worker thread, one at a time, so
    that the event loop keeps serving other requests, and a crowd of renders cannot take every
    core from them (see also `_rendered`)."""

    def __init__(self, *, max_entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bodies: OrderedDict[tuple[str, CalendarSelection], tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[CalendarKey, asyncio.Future[bytes]] = {}
        self._rendering = asyncio.Semaphore(1)
        self.renders = 0

    async def body(self, key: CalendarKey, read: Callable[[], Awaitable[CalendarTasks]]) -> bytes:
        """The calendar's bytes: kept ones, or those of `read()`'s tasks rendered now."""
        slot = (key.user_id, key.selection)
        kept = self._bodies.get(slot)
        if kept is not None and kept[0] == key.change_number:
            self._bodies.move_to_end(slot)
            return kept[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._render(key, read))
            pending.add_done_callback(lambda done: self._done(key, done))
        # Shielded: a client that goes away does not cancel the render others wait for.
        return await asyncio.shield(pending)

    async def _render(self, key: CalendarKey, read: Callable[[], Awaitable[CalendarTasks]]) -> bytes:
        content = await read()
        async with self._rendering:
            body = await asyncio.to_thread(_rendered, content)
        self.renders += 1
        self._keep(key, body)
        return body

    def _done(self, key: CalendarKey, done: asyncio.Future[bytes]) -> None:
        del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody waits for any more is not logged as lost

    def _keep(self, key: CalendarKey, body: bytes) -> None:
        slot = (key.user_id, key.selection)
        kept = self._bodies.get(slot)
        if kept is not None:
            if kept[0] > key.change_number:
                return  # a newer one finished first
            self._bytes -= len(kept[1])
            del self._bodies[slot]
        if len(body) > self._max_bytes:
            return
        self._bodies[slot] = (key.change_number, body)
        self._bytes += len(body)
        while len(self._bodies) > self._max_entries or self._bytes > self._max_bytes:
            _, (_, evicted) = self._bodies.popitem(last=False)
            self._bytes -= len(evicted)

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._bodies)
