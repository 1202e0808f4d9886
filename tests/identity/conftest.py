"""Signing keys, token forging and a real local JWKS server for the verifier's tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.jwt_tools import JwksServer, SigningKey
from todo_adapters.auth import JwksKeys, JwtVerifier, KeySource

ISSUER = "https://auth.example.test"
AUDIENCE = "https://auth.example.test"
USER_ID = "user-a"
LEEWAY_SECONDS = 30
REFETCH_INTERVAL = 30.0


def _make_claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for USER_ID; a change to None removes that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": USER_ID,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


@pytest.fixture(scope="session")
def ed25519_key() -> SigningKey:
    return SigningKey("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey("rsa-1", "RS256", rsa.generate_private_key(65537, 2048))


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def stranger_key() -> SigningKey:
    """A key the JWKS server never publishes."""
    return SigningKey("stranger", "EdDSA", ed25519.Ed25519PrivateKey.generate())


class FakeClock:
    """A monotonic clock the test moves by hand, so refetch intervals need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jwks_server(ed25519_key: SigningKey, rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(ed25519_key, rsa_key, ec_key)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def jwks_keys(jwks_server: JwksServer, clock: FakeClock) -> AsyncIterator[JwksKeys]:
    keys = JwksKeys(jwks_server.url, http_timeout=2.0, min_refetch_interval=REFETCH_INTERVAL, clock=clock)
    yield keys
    await keys.aclose()


@pytest.fixture
def make_claims() -> Callable[..., dict[str, Any]]:
    """Valid claims for `user-a` from the test issuer; `name=None` removes a claim."""
    return _make_claims


@pytest.fixture
def make_verifier() -> Callable[..., JwtVerifier]:
    """A verifier for the test issuer and audience, any setting overridable."""

    def make(key_source: KeySource, **settings: Any) -> JwtVerifier:
        defaults: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway_seconds": LEEWAY_SECONDS,
        }
        return JwtVerifier(key_source=key_source, **{**defaults, **settings})

    return make


@pytest.fixture
def verifier(jwks_keys: JwksKeys, make_verifier: Callable[..., JwtVerifier]) -> JwtVerifier:
    """A verifier trusting the JWKS server's keys, configured as for Better Auth."""
    return make_verifier(jwks_keys)
