"""Tokens from a real Better Auth server verify as their user, and only as their user."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import jwt
import pytest

from todo_adapters.auth import JwksKeys, JwtVerifier
from todo_core.errors import AuthenticationFailed

pytestmark = pytest.mark.slow  # starts a Node process


@pytest.fixture
async def verifier(better_auth_issuer) -> AsyncIterator[JwtVerifier]:
    """The verifier configured as DESIGN.md says for Better Auth."""
    keys = JwksKeys(better_auth_issuer.jwks_url)
    yield JwtVerifier(key_source=keys, issuer=better_auth_issuer.base_url, audience=better_auth_issuer.base_url)
    await keys.aclose()


async def test_better_auth_token_is_accepted_and_names_its_user(better_auth_issuer, verifier) -> None:
    token, user_id = better_auth_issuer.mint("alice@example.com")

    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert await verifier.verify(token) == user_id


async def test_token_for_one_user_verifies_as_that_user_and_not_another(better_auth_issuer, verifier) -> None:
    token_a, user_a = better_auth_issuer.mint("ann@example.com")
    token_b, user_b = better_auth_issuer.mint("bob@example.com")

    assert user_a != user_b
    assert await verifier.verify(token_a) == user_a
    assert await verifier.verify(token_b) == user_b


async def test_better_auth_token_with_a_tampered_payload_is_refused(better_auth_issuer, verifier) -> None:
    token, _ = better_auth_issuer.mint("carol@example.com")
    _, other_user = better_auth_issuer.mint("dave@example.com")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = claims["id"] = other_user
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(AuthenticationFailed):
        await verifier.verify(f"{header}.{forged}.{signature}")


async def test_better_auth_token_for_another_audience_is_refused(better_auth_issuer) -> None:
    token, _ = better_auth_issuer.mint("erin@example.com")
    keys = JwksKeys(better_auth_issuer.jwks_url)
    elsewhere = JwtVerifier(key_source=keys, issuer=better_auth_issuer.base_url, audience="https://other.example")
    try:
        with pytest.raises(AuthenticationFailed):
            await elsewhere.verify(token)
    finally:
        await keys.aclose()
