"""Where verification keys come from, and the shared-secret (HS256) source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key bound to the one algorithm it may verify (so a token cannot choose another)."""

    key: Any
    algorithm: str


class KeySource(Protocol):
    """Finds the key that should have signed a token."""

    async def key_for(self, kid: str | None) -> VerificationKey:
        """Return the key for the token header's `kid` (None when the header has none).

        :raises AuthenticationFailed: no trusted key matches.
        :raises IdentityUnavailable: the keys cannot be had right now.
        """
        ...

    async def check(self) -> None:
        """Make sure keys can be had (readiness).

        :raises IdentityUnavailable: they cannot, right now.
        """
        ...


class SharedSecretKeys:
    """One HS256 secret shared with whoever mints the tokens; the `kid` is ignored."""

    def __init__(self, secret: str) -> None:
        """:raises ValueError: the secret is shorter than 32 bytes (UTF-8)."""
        encoded = secret.encode()
        if len(encoded) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._key = VerificationKey(encoded, "HS256")

    def __repr__(self) -> str:
        return "SharedSecretKeys(<hidden>)"

    async def key_for(self, kid: str | None) -> VerificationKey:
        """Return the shared secret, whatever the `kid`. Never raises."""
        return self._key

    async def check(self) -> None:
        """The secret is always at hand. Never raises."""
