"""Who is calling: the port that turns a bearer credential into a user id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """The user a token was issued for, and until when it is accepted."""

    user_id: str
    #: The instant (POSIX seconds) from which the token is refused: its expiry plus the clock
    #: skew tolerated. What lasts as long as the token (an event stream) ends here.
    valid_until: float


class IdentityVerifier(Protocol):
    """Checks a bearer token and names the user it was issued for."""

    async def verify(self, token: str) -> str:
        """Return the user id the token was issued for.

        :raises AuthenticationFailed: the token is missing a part, malformed, expired, not yet
            valid, wrongly signed, for another issuer or audience, or names no user.
        """
        ...

    async def identify(self, token: str) -> Identity:
        """Return the user the token was issued for and until when it is accepted.

        :raises AuthenticationFailed: as `verify`.
        """
        ...
