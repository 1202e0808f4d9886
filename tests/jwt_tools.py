"""Tokens as issuers and attackers make them, and a real JWKS server: shared by the verifier's
unit tests and the API's attack suite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

_TO_JWK: dict[str, Any] = {"EdDSA": OKPAlgorithm, "RS256": RSAAlgorithm, "ES256": ECAlgorithm}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge(header: dict[str, Any], claims: dict[str, Any], *, hmac_key: bytes | None = None) -> str:
    """A token built by hand, as an attacker would: unsigned, or HMAC-SHA256-signed with any bytes."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def replace_payload(token: str, claims: dict[str, Any]) -> str:
    """The same header and signature over other claims."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url_json(claims)}.{signature}"


@dataclass(frozen=True)
class SigningKey:
    """A private key as the issuer holds it, and the public JWK it publishes."""

    kid: str
    algorithm: str
    private_key: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = _TO_JWK[self.algorithm].to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid, **(headers or {})}
        )


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS the test can change, counting requests."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        #: The status it answers with: 503 plays a key server that is down (the document unsent).
        self.status = 200
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/auth/jwks"

    def publish(self, *keys: SigningKey) -> None:
        with self._lock:
            self.document = {"keys": [key.public_jwk for key in keys]}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Shut down and close the listening socket: later connections are refused."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    status = server.status
                    body = json.dumps(server.document).encode() if status == 200 else b"Service Unavailable"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass  # keep the test output clean

        return Handler
