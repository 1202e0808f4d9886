"""Bearer JWT verification (the `IdentityVerifier` port) and development tokens."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.types import Options

from todo_adapters.auth.keys import KeySource, SharedSecretKeys
from todo_core.errors import AuthenticationFailed, CredentialProblem
from todo_core.identity import Identity
from todo_core.text import unstorable_reason

#: Far above any real token (Better Auth's are ~1 KB); refusing before parsing keeps a flood
#: of huge headers from costing base64 and JSON work.
MAX_TOKEN_LENGTH = 8 * 1024
MAX_USER_ID_LENGTH = 255
#: Every algorithm any key source can bind a key to; anything else is refused before a key
#: lookup, so made-up headers cannot trigger JWKS refetches.
SUPPORTED_ALGORITHMS = frozenset({"HS256", "EdDSA", "RS256", "ES256"})
#: Verified tokens remembered at once. A front end sends the same token for its lifetime
#: (Better Auth: 15 minutes); a signature check costs far more than the rest of a request.
CACHE_SIZE = 4096


class JwtVerifier:
    """Checks a signed JWT against keys from a `KeySource` and returns its user id claim."""

    def __init__(
        self,
        *,
        key_source: KeySource,
        issuer: str | None,
        audience: str | None,
        user_claim: str = "sub",
        leeway_seconds: float = 30,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._key_source = key_source
        self._cache_size = cache_size
        self._issuer = issuer
        self._audience = audience
        self._user_claim = user_claim
        self._leeway_seconds = leeway_seconds
        self._options: Options = {
            "require": ["exp"],
            # Unconfigured means unchecked: PyJWT would otherwise refuse any token with `aud`.
            "verify_aud": audience is not None,
        }
        # token → whom it names and until when, oldest first.
        self._verified: dict[str, Identity] = {}

    async def verify(self, token: str) -> str:
        """Return the user id the token was issued for. A token verified before is
        accepted again, without a signature check, until it expires.

        :raises AuthenticationFailed: the token is too long, malformed, unsigned, signed with
            an unknown key or another algorithm than its key's, expired, not yet valid, for
            another issuer or audience, or its user claim is not a non-empty string; its
            `problem` says which.
        :raises IdentityUnavailable: the keys to check it with cannot be fetched right now.
        """
        return (await self.identify(token)).user_id

    async def identify(self, token: str) -> Identity:
        """Return the user the token was issued for and the instant it stops being accepted
        (`exp` plus the leeway), remembered as `verify` does.

        :raises AuthenticationFailed: as `verify`.
        :raises IdentityUnavailable: as `verify`.
        """
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(CredentialProblem.MISSING)
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthenticationFailed(CredentialProblem.MALFORMED)
        remembered = self._verified.get(token)
        if remembered is not None:
            if time.time() < remembered.valid_until:
                return remembered
            del self._verified[token]
        claims = await self._checked_claims(token)
        identity = Identity(self._user_id(claims), float(claims["exp"]) + self._leeway_seconds)
        self._remember(token, identity)
        return identity

    async def _checked_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(CredentialProblem.MALFORMED) from error
        algorithm, kid = header.get("alg"), header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationFailed(CredentialProblem.MALFORMED, claim="kid")
        if not isinstance(algorithm, str) or algorithm not in SUPPORTED_ALGORITHMS:
            raise AuthenticationFailed(CredentialProblem.ALGORITHM_NOT_ALLOWED)
        key = await self._key_source.key_for(kid)
        if algorithm != key.algorithm:
            # Algorithm confusion: the key, not the token, says how it may be used.
            raise AuthenticationFailed(CredentialProblem.ALGORITHM_NOT_ALLOWED)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_seconds,
                options=self._options,
            )
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            raise _refusal(error, token) from error
        return claims

    @property
    def remembered(self) -> int:
        """How many verified tokens are remembered (never more than the cache size)."""
        return len(self._verified)

    def _remember(self, token: str, identity: Identity) -> None:
        if len(self._verified) >= self._cache_size:
            now = time.time()
            for stale in [key for key, known in self._verified.items() if known.valid_until <= now]:
                del self._verified[stale]
            while len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = identity

    def _user_id(self, claims: dict[str, Any]) -> str:
        user_id = claims.get(self._user_claim)
        # A user id is stored with every row: one the database cannot hold names no user.
        if (
            not isinstance(user_id, str)
            or not user_id.strip()
            or len(user_id) > MAX_USER_ID_LENGTH
            or unstorable_reason(user_id)
        ):
            raise AuthenticationFailed(CredentialProblem.NO_USER, claim=self._user_claim)
        return user_id


def _refusal(error: Exception, token: str) -> AuthenticationFailed:
    """Why PyJWT refused a token whose header named an accepted algorithm and a known key.

    PyJWT checks the signature before any claim, so a claim's problem is reported only for a
    token that was genuinely signed: its claims may then be read without a second check.
    """
    match error:
        case jwt.ExpiredSignatureError():
            return AuthenticationFailed(CredentialProblem.EXPIRED, at=_instant(token, "exp"))
        case jwt.ImmatureSignatureError():
            return AuthenticationFailed(CredentialProblem.NOT_YET_VALID, at=_instant(token, "nbf", "iat"))
        case jwt.InvalidIssuerError():
            return AuthenticationFailed(CredentialProblem.WRONG_ISSUER)
        case jwt.InvalidAudienceError():
            return AuthenticationFailed(CredentialProblem.WRONG_AUDIENCE)
        case jwt.MissingRequiredClaimError(claim="iss"):
            return AuthenticationFailed(CredentialProblem.WRONG_ISSUER)
        case jwt.MissingRequiredClaimError(claim="aud"):
            return AuthenticationFailed(CredentialProblem.WRONG_AUDIENCE)
        case jwt.MissingRequiredClaimError():
            return AuthenticationFailed(CredentialProblem.MISSING_CLAIM, claim=error.claim)
        case jwt.exceptions.InvalidSubjectError():  # `sub` is not a string
            return AuthenticationFailed(CredentialProblem.NO_USER, claim="sub")
        case jwt.InvalidSignatureError():
            return AuthenticationFailed(CredentialProblem.BAD_SIGNATURE)
        case jwt.InvalidAlgorithmError():
            return AuthenticationFailed(CredentialProblem.ALGORITHM_NOT_ALLOWED)
    # Undecodable parts, claims of the wrong type (`exp` as text), a key PyJWT cannot use.
    return AuthenticationFailed(CredentialProblem.MALFORMED)


def _instant(token: str, *claims: str) -> datetime | None:
    """The latest instant among `claims` that the (signature-checked) token holds as numbers:
    when it expired (`exp`), or from when it is valid (`nbf` and `iat`, both checked)."""
    payload = jwt.decode(token, options={"verify_signature": False})
    instants = [
        value
        for value in (payload.get(claim) for claim in claims)
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    try:
        return datetime.fromtimestamp(max(instants), UTC) if instants else None
    except (OverflowError, OSError, ValueError):
        return None


def mint_token(
    secret: str,
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """Return an HS256 development token for `user_id`, valid for `ttl_seconds`.

    :raises ValueError: the secret is shorter than 32 bytes (it could not be verified).
    """
    SharedSecretKeys(secret)  # the verifier's length rule: refuse to mint what it would refuse
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user_id, "iat": issued_at, "exp": issued_at + ttl_seconds}
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
