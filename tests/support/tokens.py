"""Helpers for the JWT tests: real keys, real signed tokens, and a counting local JWKS server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class Signer:
    """A client key pair: signs tokens and publishes its public JWK."""

    kid: str
    alg: str
    private_key: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk = json.loads(algorithm.to_jwk(public))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return jwk

    def token(self, payload: dict[str, Any], *, alg: str | None = None, **header: Any) -> str:
        headers = {"kid": self.kid, "typ": "JWT", **header}
        headers = {k: v for k, v in headers.items() if v is not None}
        return jwt.encode(payload, self.private_key, algorithm=alg or self.alg, headers=headers)


def es384_signer(kid: str = "es-1") -> Signer:
    return Signer(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


def rs384_signer(kid: str = "rs-1", bits: int = 2048) -> Signer:
    return Signer(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=bits))


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.jwk() for s in signers]}


def claims(aud: str | list[str], iss: str, /, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {"iss": iss, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(
    header: dict[str, Any], payload: dict[str, Any], hmac_secret: bytes | None = None, signature: bytes = b""
) -> str:
    """Hand-built compact JWS, for what PyJWT refuses to produce (alg none, HMAC keyed with a public key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha384).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class JwksServer:
    """A real HTTP server on 127.0.0.1 that counts every hit per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                server.hits[self.path] += 1
                route = server.routes.get(self.path, Route(404, b"{}"))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve_json(self, path: str, document: Any) -> str:
        self.routes[path] = Route(200, json.dumps(document).encode())
        return self.url(path)

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
