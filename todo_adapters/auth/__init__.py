"""JWT identity: verify bearer tokens against a shared secret or a JWKS URL (PyJWT)."""

from todo_adapters.auth.jwks import JwksKeys
from todo_adapters.auth.jwt import JwtVerifier, mint_token
from todo_adapters.auth.keys import KeySource, SharedSecretKeys, VerificationKey

__all__ = [
    "JwksKeys",
    "JwtVerifier",
    "KeySource",
    "SharedSecretKeys",
    "VerificationKey",
    "mint_token",
]
