"""The JWT verifier: who a bearer token names, and every way a token is refused."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.jwt_tools import b64url, b64url_json, forge, replace_payload
from todo_adapters.auth import JwksKeys, SharedSecretKeys, mint_token
from todo_core.errors import AuthenticationFailed, CredentialProblem, IdentityUnavailable

SECRET = "a-development-secret-that-is-long-enough"


async def assert_refused(verifier, token: Any, problem: CredentialProblem | None = None) -> AuthenticationFailed:
    """The token is refused (for `problem`, when given); the error, for a closer look."""
    with pytest.raises(AuthenticationFailed) as refused:
        await verifier.verify(token)
    if problem is not None:
        assert refused.value.problem is problem, refused.value
    return refused.value


# --- Tokens that are accepted ----------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["ed25519_key", "rsa_key", "ec_key"])
async def test_token_signed_with_a_published_key_names_its_user(request, verifier, make_claims, key_name) -> None:
    key = request.getfixturevalue(key_name)

    assert await verifier.verify(key.sign(make_claims(sub="user-42"))) == "user-42"


async def test_hs256_token_signed_with_the_shared_secret_names_its_user(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET))
    token = jwt.encode(make_claims(sub="user-42"), SECRET, algorithm="HS256")

    assert await verifier.verify(token) == "user-42"


async def test_minted_development_token_is_accepted_by_the_shared_secret_verifier(
    make_verifier,
) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET), issuer="todo-dev", audience="todo")
    token = mint_token(SECRET, "dev-user", issuer="todo-dev", audience="todo")

    assert await verifier.verify(token) == "dev-user"


async def test_user_claim_is_configurable(make_verifier, jwks_keys, ed25519_key, make_claims) -> None:
    by_user_id = make_verifier(jwks_keys, user_claim="user_id")
    token = ed25519_key.sign(make_claims(sub="subject", user_id="user-7"))

    assert await by_user_id.verify(token) == "user-7"


async def test_token_with_an_audience_is_accepted_when_no_audience_is_configured(
    make_verifier, jwks_keys, ed25519_key, make_claims
) -> None:
    unchecked = make_verifier(jwks_keys, issuer=None, audience=None)

    assert await unchecked.verify(ed25519_key.sign(make_claims())) == "user-a"


async def test_token_without_kid_is_accepted_when_the_key_set_has_one_key(
    jwks_server, jwks_keys, verifier, ed25519_key, make_claims
) -> None:
    jwks_server.publish(ed25519_key)
    token = jwt.encode(make_claims(), ed25519_key.private_key, algorithm="EdDSA")

    assert await verifier.verify(token) == "user-a"


async def test_leeway_accepts_a_token_expired_less_than_the_leeway_ago(verifier, ed25519_key, make_claims) -> None:
    token = ed25519_key.sign(make_claims(exp=int(time.time()) - 10))

    assert await verifier.verify(token) == "user-a"


async def test_leeway_accepts_a_token_not_valid_until_less_than_the_leeway_ahead(
    verifier, ed25519_key, make_claims
) -> None:
    token = ed25519_key.sign(make_claims(nbf=int(time.time()) + 10))

    assert await verifier.verify(token) == "user-a"


# --- Signature and algorithm attacks ---------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_token_signed_with_alg_none_is_refused(verifier, jwks_server, ed25519_key, make_claims, alg) -> None:
    token = forge({"alg": alg, "kid": ed25519_key.kid}, make_claims())

    await assert_refused(verifier, token, CredentialProblem.ALGORITHM_NOT_ALLOWED)
    assert jwks_server.requests == 0  # refused before any key lookup


async def test_token_signed_with_alg_none_is_refused_by_the_shared_secret_verifier(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET))

    await assert_refused(verifier, jwt.encode(make_claims(), "", algorithm="none"))


async def test_hs256_token_signed_with_the_rsa_public_key_pem_is_refused(verifier, rsa_key, make_claims) -> None:
    public_pem = rsa_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forge({"alg": "HS256", "kid": rsa_key.kid}, make_claims(), hmac_key=public_pem)

    await assert_refused(verifier, token, CredentialProblem.ALGORITHM_NOT_ALLOWED)


async def test_hs256_token_signed_with_the_ed25519_public_key_bytes_is_refused(
    verifier, ed25519_key, make_claims
) -> None:
    public_bytes = ed25519_key.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    token = forge({"alg": "HS256", "kid": ed25519_key.kid}, make_claims(), hmac_key=public_bytes)

    await assert_refused(verifier, token)


async def test_hs256_token_without_kid_is_refused_by_a_single_key_jwks_verifier(
    jwks_server, verifier, ed25519_key, make_claims
) -> None:
    jwks_server.publish(ed25519_key)
    public_jwk_x = ed25519_key.public_jwk["x"].encode()

    await assert_refused(verifier, forge({"alg": "HS256"}, make_claims(), hmac_key=public_jwk_x))


async def test_token_claiming_another_algorithm_than_its_key_is_refused(verifier, ec_key, rsa_key, make_claims) -> None:
    # Genuinely signed with the RSA key, but pointing at the EC key's kid.
    token = rsa_key.sign(make_claims(), headers={"kid": ec_key.kid})

    await assert_refused(verifier, token, CredentialProblem.ALGORITHM_NOT_ALLOWED)


async def test_symmetric_key_in_the_jwks_is_never_trusted(jwks_server, verifier, make_claims) -> None:
    secret = b"a-symmetric-key-published-by-mistake!"
    jwks_server.document = {"keys": [{"kty": "oct", "kid": "oct-1", "k": b64url(secret)}]}
    token = jwt.encode(make_claims(), secret, algorithm="HS256", headers={"kid": "oct-1"})

    await assert_refused(verifier, token, CredentialProblem.UNKNOWN_KEY)


async def test_payload_tampered_after_signing_is_refused(verifier, ed25519_key, make_claims) -> None:
    token = ed25519_key.sign(make_claims(sub="user-a"))

    await assert_refused(verifier, replace_payload(token, make_claims(sub="user-b")), CredentialProblem.BAD_SIGNATURE)


async def test_token_signed_by_a_key_the_issuer_never_published_is_refused(
    verifier, ed25519_key, stranger_key, make_claims
) -> None:
    # The attacker reuses a genuine kid with their own key.
    token = stranger_key.sign(make_claims(), headers={"kid": ed25519_key.kid})

    await assert_refused(verifier, token, CredentialProblem.BAD_SIGNATURE)


async def test_token_with_an_unknown_kid_is_refused(verifier, stranger_key, make_claims) -> None:
    await assert_refused(verifier, stranger_key.sign(make_claims()), CredentialProblem.UNKNOWN_KEY)


async def test_hs256_token_signed_with_another_secret_is_refused(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET))
    token = jwt.encode(make_claims(), "another-secret-that-is-also-long-enough", algorithm="HS256")

    await assert_refused(verifier, token, CredentialProblem.BAD_SIGNATURE)


# --- Claims ----------------------------------------------------------------------------------


async def test_expired_token_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(exp=int(time.time()) - 3600)))


async def test_leeway_does_not_accept_a_token_expired_longer_ago(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(exp=int(time.time()) - 60)), CredentialProblem.EXPIRED)


async def test_token_not_valid_before_a_future_time_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(
        verifier, ed25519_key.sign(make_claims(nbf=int(time.time()) + 3600)), CredentialProblem.NOT_YET_VALID
    )


async def test_token_without_exp_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(exp=None)), CredentialProblem.MISSING_CLAIM)


async def test_token_from_another_issuer_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(
        verifier, ed25519_key.sign(make_claims(iss="https://evil.example")), CredentialProblem.WRONG_ISSUER
    )


async def test_token_without_issuer_is_refused_when_an_issuer_is_configured(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(iss=None)), CredentialProblem.WRONG_ISSUER)


async def test_token_for_another_audience_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(
        verifier, ed25519_key.sign(make_claims(aud="https://other.example")), CredentialProblem.WRONG_AUDIENCE
    )


async def test_token_without_audience_is_refused_when_an_audience_is_configured(
    verifier, ed25519_key, make_claims
) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(aud=None)), CredentialProblem.WRONG_AUDIENCE)


async def test_token_without_the_user_claim_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(sub=None)), CredentialProblem.NO_USER)


@pytest.mark.parametrize("user_id", [42, ["user-a"], {"id": "user-a"}, True])
async def test_token_whose_user_claim_is_not_a_string_is_refused(
    make_verifier, jwks_keys, ed25519_key, make_claims, user_id
) -> None:
    # A custom claim, since PyJWT itself already refuses a non-string `sub`.
    verifier = make_verifier(jwks_keys, user_claim="user_id")

    await assert_refused(verifier, ed25519_key.sign(make_claims(user_id=user_id)), CredentialProblem.NO_USER)


@pytest.mark.parametrize("user_id", ["", "   "])
async def test_token_whose_user_claim_is_empty_is_refused(verifier, ed25519_key, make_claims, user_id) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(sub=user_id)), CredentialProblem.NO_USER)


async def test_token_whose_user_id_is_longer_than_255_characters_is_refused(verifier, ed25519_key, make_claims) -> None:
    await assert_refused(verifier, ed25519_key.sign(make_claims(sub="u" * 256)), CredentialProblem.NO_USER)


# --- Malformed input -------------------------------------------------------------------------


async def test_100_kb_token_is_refused_before_any_parsing(verifier, jwks_server, ed25519_key, make_claims) -> None:
    # Validly signed: only its size can make it fail.
    token = ed25519_key.sign(make_claims(padding="x" * 100_000))
    started = time.perf_counter()

    for _ in range(1000):
        await assert_refused(verifier, token, CredentialProblem.MALFORMED)

    assert time.perf_counter() - started < 1.0
    assert jwks_server.requests == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a jwt",
        "a.b.c",
        "....",
        "eyJhbGciOiJFZERTQSJ9",
        f"{b64url(b'[1, 2]')}.{b64url_json({'sub': 'x'})}.sig",
        f"{b64url(b'not json')}.{b64url_json({'sub': 'x'})}.sig",
        f"{b64url_json({'alg': 'EdDSA', 'kid': 'ed-1'})}.{b64url(b'not json')}.c2ln",
        f"{b64url_json({'alg': 'EdDSA', 'kid': 'ed-1'})}.{b64url_json([1])}.c2ln",
        f"{b64url_json({'alg': 'EdDSA', 'kid': 7})}.{b64url_json({'sub': 'x'})}.c2ln",
        f"{b64url_json({'alg': ['EdDSA']})}.{b64url_json({'sub': 'x'})}.c2ln",
        "é.é.é",
        "\x00\x00\x00",
    ],
)
async def test_garbage_that_is_not_a_jwt_is_refused(verifier, token) -> None:
    await assert_refused(verifier, token)


@pytest.mark.parametrize("token", [None, b"bytes.are.not", 12])
async def test_a_token_that_is_not_a_string_is_refused(verifier, token) -> None:
    await assert_refused(verifier, token)


async def test_garbage_claims_under_a_valid_signature_are_refused(verifier, ed25519_key, make_claims) -> None:
    for claims in (
        make_claims(exp="tomorrow"),
        make_claims(aud=[1, 2]),
        make_claims(iat="now"),
        make_claims(nbf={"at": 1}),
    ):
        await assert_refused(verifier, ed25519_key.sign(claims))


# --- Secrets ---------------------------------------------------------------------------------


def test_shared_secret_shorter_than_32_bytes_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SharedSecretKeys("x" * 31)


def test_minting_with_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        mint_token("short", "user-a")


def test_minted_token_carries_sub_iat_exp_and_the_given_issuer_and_audience() -> None:
    token = mint_token(SECRET, "user-a", ttl_seconds=60, issuer="iss", audience="aud", now=1000)

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False}, audience="aud")
    assert claims == {"sub": "user-a", "iat": 1000, "exp": 1060, "iss": "iss", "aud": "aud"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


# --- The JWKS key source, against a real HTTP server -----------------------------------------


async def test_keys_are_fetched_once_however_many_tokens_arrive_together(
    verifier, jwks_server, ed25519_key, make_claims
) -> None:
    token = ed25519_key.sign(make_claims())

    user_ids = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))

    assert user_ids == ["user-a"] * 20
    assert jwks_server.requests == 1


async def test_a_rotated_in_key_is_picked_up_without_restart(
    verifier, jwks_server, clock, ed25519_key, stranger_key, make_claims
) -> None:
    assert await verifier.verify(ed25519_key.sign(make_claims())) == "user-a"
    jwks_server.publish(ed25519_key, stranger_key)
    clock.advance(31)

    assert await verifier.verify(stranger_key.sign(make_claims(sub="user-b"))) == "user-b"
    assert jwks_server.requests == 2


async def test_a_flood_of_unknown_kids_causes_at_most_one_extra_fetch(
    verifier, jwks_server, clock, ed25519_key, stranger_key, make_claims
) -> None:
    await verifier.verify(ed25519_key.sign(make_claims()))
    clock.advance(31)
    flood = [stranger_key.sign(make_claims(), headers={"kid": f"made-up-{n}"}) for n in range(50)]

    results = await asyncio.gather(*(verifier.verify(t) for t in flood), return_exceptions=True)

    assert all(isinstance(result, AuthenticationFailed) for result in results)
    assert jwks_server.requests == 2


async def test_an_unknown_kid_refetches_again_once_the_interval_has_passed(
    verifier, jwks_server, clock, stranger_key, make_claims
) -> None:
    token = stranger_key.sign(make_claims())
    await assert_refused(verifier, token)
    await assert_refused(verifier, token)
    clock.advance(31)
    await assert_refused(verifier, token)

    assert jwks_server.requests == 2


async def test_a_cached_key_keeps_working_while_the_key_server_is_down(
    verifier, jwks_server, clock, ed25519_key, stranger_key, make_claims
) -> None:
    token = ed25519_key.sign(make_claims())
    assert await verifier.verify(token) == "user-a"
    jwks_server.stop()
    clock.advance(31)

    with pytest.raises(IdentityUnavailable):  # tries a refetch, fails: the new kid is not refused
        await verifier.verify(stranger_key.sign(make_claims()))
    assert await verifier.verify(token) == "user-a"


async def test_an_unreachable_key_server_leaves_tokens_unchecked_not_refused(
    make_verifier, ed25519_key, make_claims
) -> None:
    unreachable = JwksKeys("http://127.0.0.1:9/jwks", http_timeout=2.0)
    try:
        with pytest.raises(IdentityUnavailable) as unavailable:
            await make_verifier(unreachable).verify(ed25519_key.sign(make_claims()))
        assert 0 < unavailable.value.retry_after <= 3
        with pytest.raises(IdentityUnavailable):
            await unreachable.check()
    finally:
        await unreachable.aclose()


@pytest.mark.parametrize("document", [[], {"keys": "nope"}, {"nokeys": 1}])
async def test_a_key_server_serving_no_key_set_leaves_tokens_unchecked(
    verifier, jwks_server, ed25519_key, make_claims, document
) -> None:
    jwks_server.document = document

    with pytest.raises(IdentityUnavailable):
        await verifier.verify(ed25519_key.sign(make_claims()))


@pytest.mark.parametrize("document", [{"keys": []}, {"keys": [{"kty": "RSA"}]}])
async def test_a_key_set_without_a_usable_key_refuses_tokens(
    verifier, jwks_keys, jwks_server, ed25519_key, make_claims, document
) -> None:
    jwks_server.document = document

    await assert_refused(verifier, ed25519_key.sign(make_claims()), CredentialProblem.UNKNOWN_KEY)
    with pytest.raises(IdentityUnavailable):  # not ready: nothing to check a token with
        await jwks_keys.check()


async def test_the_key_set_is_fetched_again_with_backoff_while_the_key_server_is_down(
    jwks_server, clock, ed25519_key, make_claims, make_verifier
) -> None:
    keys = JwksKeys(jwks_server.url, http_timeout=2.0, first_retry=0.5, max_retry=3.0, clock=clock)
    verifier = make_verifier(keys)
    token = ed25519_key.sign(make_claims())
    served = jwks_server.document
    jwks_server.document = {"nokeys": "a proxy's error page"}
    try:
        waits = []
        for _ in range(6):
            with pytest.raises(IdentityUnavailable) as unavailable:
                await verifier.verify(token)
            with pytest.raises(IdentityUnavailable):  # within the wait: no fetch
                await verifier.verify(token)
            waits.append(unavailable.value.retry_after)
            clock.advance(unavailable.value.retry_after)
        assert waits == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
        assert jwks_server.requests == 6

        jwks_server.document = served  # back: the next attempt, at most 3 s away, succeeds
        assert await verifier.verify(token) == "user-a"
        assert jwks_server.requests == 7
    finally:
        await keys.aclose()


async def test_token_without_kid_is_refused_when_the_key_set_has_several_keys(
    verifier, ed25519_key, make_claims
) -> None:
    token = jwt.encode(make_claims(), ed25519_key.private_key, algorithm="EdDSA")

    await assert_refused(verifier, token, CredentialProblem.UNKNOWN_KEY)


# --- Verified tokens are remembered until they expire ------------------------------------------


class CountingKeys(SharedSecretKeys):
    """The shared secret, counting how often a signature check asked for it."""

    def __init__(self) -> None:
        super().__init__(SECRET)
        self.lookups = 0

    async def key_for(self, kid: str | None) -> Any:
        self.lookups += 1
        return await super().key_for(kid)


async def test_a_token_is_checked_once_then_remembered(make_verifier, make_claims) -> None:
    keys = CountingKeys()
    verifier = make_verifier(keys)
    token = jwt.encode(make_claims(sub="user-42"), SECRET, algorithm="HS256")

    assert [await verifier.verify(token) for _ in range(3)] == ["user-42"] * 3
    assert keys.lookups == 1


async def test_a_remembered_token_is_refused_once_it_expires(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET), leeway_seconds=0)
    token = jwt.encode(make_claims(exp=time.time() + 1.5), SECRET, algorithm="HS256")
    assert await verifier.verify(token) == "user-a"

    await asyncio.sleep(1.6)

    await assert_refused(verifier, token, CredentialProblem.EXPIRED)


async def test_a_refused_token_is_not_remembered(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET))
    forged = jwt.encode(make_claims(), "another-secret-that-is-long-enough-too", algorithm="HS256")

    for _ in range(2):
        await assert_refused(verifier, forged, CredentialProblem.BAD_SIGNATURE)
    assert verifier.remembered == 0


async def test_remembered_tokens_are_bounded(make_verifier, make_claims) -> None:
    verifier = make_verifier(SharedSecretKeys(SECRET), cache_size=8)
    tokens = [jwt.encode(make_claims(sub=f"user-{n}"), SECRET, algorithm="HS256") for n in range(20)]

    assert [await verifier.verify(token) for token in tokens] == [f"user-{n}" for n in range(20)]
    assert verifier.remembered == 8
    assert await verifier.verify(tokens[0]) == "user-0"  # forgotten, so checked again: still valid
