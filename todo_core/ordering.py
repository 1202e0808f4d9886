"""Manual order: each task's `position` among its siblings, as a fractional index key.

A key is a short string, and keys sort as the tasks do (by code point, as Python and
PostgreSQL's "C" collation compare text). There is always a key between two others, so a task
moves by taking a key between its new neighbours: one row written, none renumbered. Moving
many times into the same gap makes keys longer; past `POSITION_MAX` characters the siblings are
given fresh, evenly spread keys (a rebalance), which happens once in well over a hundred such
moves. The keys are rocicorp's fractional indexing (base 62), from the `fractional-indexing`
package.
"""

from __future__ import annotations

from collections.abc import Sequence

import fractional_indexing

#: The longest key a move may make before the siblings are rebalanced.
POSITION_MAX = 32
#: The key of a task with no siblings.
FIRST = fractional_indexing.generate_key_between(None, None)


def between(before: str | None, after: str | None) -> str | None:
    """A key that sorts after `before` and before `after` (None: no bound on that side), or
    None when there is no short one: the keys are too close, equal or out of order (the
    siblings need a rebalance)."""
    try:
        key: str = fractional_indexing.generate_key_between(before, after)
    except fractional_indexing.FIError:
        return None
    return key if len(key) <= POSITION_MAX else None


def after(last: str | None) -> str:
    """The key of a task placed after every sibling (`last` is the greatest key, if any).
    Appending never makes a key longer than the greatest one's whole part."""
    return appended(last, 1)[0]


def spread(count: int) -> Sequence[str]:
    """`count` short keys in order, as far apart as short keys go: a rebalance."""
    keys: list[str] = fractional_indexing.generate_n_keys_between(None, None, count)
    return keys


def appended(last: str | None, count: int) -> Sequence[str]:
    """The keys of `count` tasks placed, in order, after every sibling (`last` is the greatest
    key, if any): as `after` applied `count` times, computed at once."""
    keys: list[str] = fractional_indexing.generate_n_keys_between(last, None, count)
    return keys
