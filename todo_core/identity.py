"""Who is calling: the port that turns a bearer credential into a user id."""

from __future__ import annotations

from typing import Protocol


class IdentityVerifier(Protocol):
    """Checks a bearer token and names the user it was issued for."""

    async def verify(self, token: str) -> str:
        """Return the user id the token was issued for.

        :raises AuthenticationFailed: the token is missing a part, malformed, expired, not yet
            valid, wrongly signed, for another issuer or audience, or names no user.
        """
        ...
