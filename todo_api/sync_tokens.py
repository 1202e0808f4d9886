"""Opaque sync tokens: a position in a user's change sequence, signed so that a mangled or
forged one is refused (400) rather than silently syncing from the wrong place.

A token is bound to its user, and is the same text for the same position: a client that
holds the `next_since` an event announces is up to date, whichever way it got it.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from uuid import UUID

import orjson

from todo_api.cursor import b64, unb64
from todo_core.errors import InvalidSyncToken
from todo_core.sync import ChangeKind, ChangePosition

_MAC_BYTES = 16
_MAX_LENGTH = 512
_PURPOSE = b"todo sync token\x00"


class SyncTokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, user_id: str, position: ChangePosition) -> str:
        payload = orjson.dumps([position.seq, int(position.kind), str(position.id) if position.id else None])
        return f"{b64(payload)}.{b64(self._mac(user_id, payload))}"

    def after(self, user_id: str, seq: int) -> str:
        """The token of a client that has every change up to and including `seq`."""
        return self.encode(user_id, ChangePosition(seq))

    def decode(self, user_id: str, token: str) -> ChangePosition:
        """:raises InvalidSyncToken: the token was not issued by us for this user."""
        try:
            if len(token) > _MAX_LENGTH:
                raise ValueError("too long")
            encoded_payload, encoded_mac = token.split(".")
            payload, mac = unb64(encoded_payload), unb64(encoded_mac)
            if not hmac.compare_digest(mac, self._mac(user_id, payload)):
                raise ValueError("signature mismatch")
            seq, kind, row_id = orjson.loads(payload)
            position = ChangePosition(int(seq), ChangeKind(kind), UUID(row_id) if row_id is not None else None)
            if position.seq < 0 or (position.id is None) != position.complete:
                raise ValueError("not a position")
            return position
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as error:
            raise InvalidSyncToken("this sync token is not valid; sync again without `since`") from error

    def _mac(self, user_id: str, payload: bytes) -> bytes:
        scope = _PURPOSE + orjson.dumps(user_id) + b"\x00" + payload
        return hmac.new(self._secret, scope, hashlib.sha256).digest()[:_MAC_BYTES]
