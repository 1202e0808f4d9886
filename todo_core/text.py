"""Rules shared by every piece of user text: what a storable string is, and how it compares."""

from __future__ import annotations

from todo_core.errors import FieldError

_SURROGATES = range(0xD800, 0xE000)


def unstorable_reason(value: str) -> str | None:
    """Why `value` cannot be stored as text by every store we support, or None if it can.

    PostgreSQL refuses NUL in text, and a lone UTF-16 surrogate is not encodable as UTF-8.
    """
    if "\x00" in value:
        return "must not contain the NUL character"
    if any(ord(char) in _SURROGATES for char in value):
        return "must not contain unpaired surrogate code points"
    return None


def text_error(field: str, value: str, *, max_length: int, min_length: int = 0) -> FieldError | None:
    """Check length and storability of an already trimmed string; None when it is fine."""
    if len(value) < min_length:
        return FieldError(
            field, "must not be blank" if min_length == 1 else f"must be at least {min_length} characters"
        )
    if len(value) > max_length:
        return FieldError(field, f"must be at most {max_length} characters")
    reason = unstorable_reason(value)
    return FieldError(field, reason) if reason else None


def comparison_key(value: str) -> str:
    """The case-insensitive form used for uniqueness and for sorting by name."""
    return value.casefold()
