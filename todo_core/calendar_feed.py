"""Calendar subscription links: a secret URL that serves a user's tasks without a bearer token.

Calendar apps cannot send a token, so the URL itself is the credential. Its secret part is
`<user>.<random>`: `<user>` is the owner's id (base64url), `<random>` 256 random bits
(base64url). Only a hash of the whole text is stored.

- **Why the user id is in the URL.** Every statement is to name one `user_id`, so that a
  database sharded by it (Citus) routes each to one shard. A bare random secret could only be
  looked up across every user's rows; with the owner's id in front, the lookup is
  `WHERE user_id = ? AND secret_hash = ?`, one shard, one index entry. The id is not a
  secret (it is in every API path); the 256 random bits are.
- **Why SHA-256 and not a slow hash.** Slow hashes (bcrypt, Argon2) protect low-entropy
  secrets that people choose, by making each guess expensive. Here the secret is 256 random
  bits made by `secrets`: a stolen hash cannot be reversed by guessing, whatever each guess
  costs (2^255 tries on average). A fast hash keeps the public route cheap, which matters on
  a route that anyone can call.
- **Why the answer to a wrong secret takes the time of a right one.** Every secret, well formed
  or not, leads to the same single indexed lookup (a malformed one with an owner that cannot
  exist), and the hash found is compared again in constant time. A revoked feed's row is gone,
  so it is answered exactly as one that never existed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from todo_core.ids import new_id

#: Random bytes in a feed's secret: 256 bits.
SECRET_BYTES = 32
#: The owner of a secret that does not decode: no user id is empty, so its lookup finds nothing,
#: yet costs what any other does.
NO_OWNER = ""


@dataclass(frozen=True, slots=True)
class CalendarFeed:
    """A subscription link of a user's, as stored: never its secret, only the secret's hash."""

    id: UUID
    user_id: str
    secret_hash: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedFeed:
    """A feed just made, with its secret: the only moment the secret is known."""

    feed: CalendarFeed
    secret: str


def issue(user_id: str, now: datetime) -> IssuedFeed:
    """A new feed of the user's, and its secret (`<user>.<random>`)."""
    secret = f"{_encode(user_id.encode())}.{_encode(secrets.token_bytes(SECRET_BYTES))}"
    return IssuedFeed(CalendarFeed(new_id(), user_id, secret_hash(secret), now), secret)


def secret_hash(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (see the module's docstring for why no slow hash)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def owner_of(secret: str) -> str:
    """The user id a secret names, or `NO_OWNER` if it names none (it is not ours)."""
    user_part, dot, random_part = secret.partition(".")
    if not dot or not user_part or not random_part:
        return NO_OWNER
    try:
        owner = _decode(user_part).decode("utf-8")
    except (binascii.Error, ValueError):
        return NO_OWNER
    # No user id holds NUL, and PostgreSQL refuses it in text: a lookup would fail, not miss.
    return NO_OWNER if "\x00" in owner else owner


def matches(feed: CalendarFeed | None, secret: str) -> bool:
    """Whether the feed found is the one the secret opens, compared in constant time."""
    expected = feed.secret_hash if feed is not None else bytes(SECRET_BYTES)
    return hmac.compare_digest(expected, secret_hash(secret)) and feed is not None


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
