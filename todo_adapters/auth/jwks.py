"""Public keys fetched from a JWKS URL (Better Auth serves them at `/api/auth/jwks`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from todo_adapters.auth.keys import VerificationKey
from todo_core.errors import AuthenticationFailed, CredentialProblem, IdentityUnavailable

logger = logging.getLogger(__name__)

#: A key's algorithm follows from what the key is, never from the token header or the
#: JWK's optional `alg`; symmetric (`oct`) keys are never trusted from a JWKS.
_ALGORITHM_BY_KEY_TYPE: dict[tuple[object, object], str] = {
    ("OKP", "Ed25519"): "EdDSA",
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
}


def _usable_key(jwk: Any) -> VerificationKey | None:
    if not isinstance(jwk, dict):
        return None
    algorithm = _ALGORITHM_BY_KEY_TYPE.get((jwk.get("kty"), jwk.get("crv")))
    if algorithm is None or jwk.get("use", "sig") != "sig":
        return None
    if jwk.get("alg", algorithm) != algorithm:
        return None
    try:
        return VerificationKey(jwt.PyJWK(jwk, algorithm).key, algorithm)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


class JwksKeys:
    """Keys from a JWKS URL, fetched lazily and cached by `kid`.

    An unknown `kid` triggers a refetch (key rotation), at most once per
    `min_refetch_interval` so a flood of made-up kids cannot hammer the key server. When the
    key server is down, tokens whose key is cached keep working; a token whose key is not
    cached could not be checked (`IdentityUnavailable`, never a refusal), and the set is
    fetched again after `first_retry` seconds, doubling up to `max_retry` while it stays
    down, so that the first request after the key server is back succeeds within
    `max_retry` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        http_timeout: float = 3.0,
        min_refetch_interval: float = 30.0,
        first_retry: float = 0.5,
        max_retry: float = 3.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._http_timeout = http_timeout
        self._min_refetch_interval = min_refetch_interval
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._keys_by_kid: dict[str, VerificationKey] = {}
        self._keys: list[VerificationKey] = []
        self._last_attempt: float | None = None
        #: Fetches failed in a row since the last one that succeeded.
        self._failures = 0
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> VerificationKey:
        """Return the cached key for `kid`, refetching the set once if it is unknown.

        Without a `kid`, the set's only key; a set of several keys is then ambiguous.

        :raises AuthenticationFailed: the key set, as last fetched, has no such key.
        :raises IdentityUnavailable: no such key is cached and the key server could not be
            reached the last time it was asked: whether the key exists is unknown.
        """
        key = self._lookup(kid)
        if key is not None:
            return key
        async with self._lock:
            # Whoever held the lock may just have fetched the key we need.
            key = self._lookup(kid)
            if key is None and self._may_fetch():
                await self._refresh()
                key = self._lookup(kid)
        if key is not None:
            return key
        if self._failures:
            raise IdentityUnavailable(self._next_attempt_in())
        raise AuthenticationFailed(CredentialProblem.UNKNOWN_KEY)

    async def check(self) -> None:
        """Make sure there are keys to check tokens with: fetch the set if none is cached (at
        most as often as a request would).

        :raises IdentityUnavailable: no key is cached, and the key server does not answer or serves
            none that is usable.
        """
        if self._keys:
            return
        async with self._lock:
            if not self._keys and self._may_fetch():
                await self._refresh()
        if not self._keys:
            raise IdentityUnavailable(self._next_attempt_in())

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it. Never raises."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        if kid is not None:
            return self._keys_by_kid.get(kid)
        return self._keys[0] if len(self._keys) == 1 else None

    def _may_fetch(self) -> bool:
        return self._last_attempt is None or self._next_attempt_in() <= 0

    def _next_attempt_in(self) -> float:
        """Seconds until the set may be fetched again (0 or less: now)."""
        if self._last_attempt is None:
            return 0.0
        # After a failure, soon again (an outage must not turn every request into a fetch, nor
        # outlast itself by long); after a success, only as often as key rotation needs.
        wait = (
            min(self._first_retry * 2 ** (self._failures - 1), self._max_retry)
            if self._failures
            else self._min_refetch_interval
        )
        return self._last_attempt + wait - self._clock()

    async def _refresh(self) -> None:
        self._last_attempt = self._clock()
        try:
            document = await self._fetch()
            keys_by_kid, keys = self._parse(document)
        except (httpx.HTTPError, TypeError, ValueError) as error:
            # Keep serving the cached keys: the key server being down must not log users out.
            self._failures += 1
            reason = (str(error).splitlines() or [type(error).__name__])[0]  # httpx adds a line of advice
            logger.warning("could not fetch the JWKS from %s (attempt %d): %s", self._url, self._failures, reason)
            return
        if self._failures:
            logger.info("fetched the JWKS from %s again after %d failed attempts", self._url, self._failures)
        self._failures = 0
        self._keys_by_kid, self._keys = keys_by_kid, keys

    async def _fetch(self) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._http_timeout)
        response = await self._client.get(self._url, timeout=self._http_timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _parse(document: Any) -> tuple[dict[str, VerificationKey], list[VerificationKey]]:
        jwks = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(jwks, list):
            raise TypeError("the JWKS has no `keys` list")
        keys_by_kid: dict[str, VerificationKey] = {}
        keys: list[VerificationKey] = []
        for jwk in jwks:
            key = _usable_key(jwk)
            if key is None:
                continue
            keys.append(key)
            if isinstance(jwk.get("kid"), str):
                keys_by_kid[jwk["kid"]] = key
        if not keys:
            # Fetched, but nothing in it can be trusted: every token is refused (unknown key).
            logger.warning("the JWKS holds no usable signing key (EdDSA, RS256 or ES256)")
        return keys_by_kid, keys
