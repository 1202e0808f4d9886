"""Opaque page cursors: a keyset position, signed so that a forged or altered one is refused.

A cursor is bound to the user and to the exact filters and sort that produced it, so it cannot
be replayed against another query (whose order it would not describe).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from todo_core.errors import InvalidCursor
from todo_core.query import Position, SortField, TaskQuery

_MAC_BYTES = 16
_MAX_LENGTH = 1024


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, user_id: str, query: TaskQuery, position: Position) -> str:
        value, task_id = position
        if isinstance(value, datetime):
            value = value.isoformat()
        payload = orjson.dumps([value, str(task_id)])
        mac = self._mac(user_id, query, payload)
        return f"{b64(payload)}.{b64(mac)}"

    def decode(self, user_id: str, query: TaskQuery, cursor: str) -> Position:
        """The position a cursor holds.

        :raises InvalidCursor: the cursor was not issued by us for this user and query.
        """
        try:
            if len(cursor) > _MAX_LENGTH:
                raise ValueError("too long")
            encoded_payload, encoded_mac = cursor.split(".")
            payload, mac = unb64(encoded_payload), unb64(encoded_mac)
            if not hmac.compare_digest(mac, self._mac(user_id, query, payload)):
                raise ValueError("signature mismatch")
            value, task_id = orjson.loads(payload)
            return _typed(query.sort.field, value), UUID(task_id)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as error:
            raise InvalidCursor(
                "this cursor belongs to another list: send it with the same `sort` and filters as the "
                "request that returned it, or start again without a cursor"
            ) from error

    def _mac(self, user_id: str, query: TaskQuery, payload: bytes) -> bytes:
        scope = orjson.dumps(
            [
                user_id,
                query.status,
                sorted(int(p) for p in query.priorities),
                query.tag_keys,
                str(query.category_id),
                query.due_before.isoformat() if query.due_before else None,
                query.due_after.isoformat() if query.due_after else None,
                query.search,
                str(query.sort),
                str(query.parent_id),
                query.top_level,
            ]
        )
        return hmac.new(self._secret, scope + b"\x00" + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _typed(sort_field: SortField, value: Any) -> Any:
    if sort_field in (SortField.CREATED_AT, SortField.UPDATED_AT, SortField.DUE_AT):
        if value is None and sort_field is SortField.DUE_AT:
            return None
        return datetime.fromisoformat(value)
    if sort_field is SortField.PRIORITY:
        return int(value)
    return str(value)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
