"""Verification of the CDS Client's JWT (CDS Hooks 2.0 §JWT; checklist in docs cds-hooks-spec.md §6).

Order matters:
1. `Authorization: Bearer <compact JWS>` is parsed strictly.
2. The header is checked BEFORE any crypto: `alg` must be ES384 or RS384 (never `none`, never HS*,
   which would let a public key be used as an HMAC secret), `kid` required, `typ` JWT if present,
   `crit`/`b64` refused (we implement no extensions).
3. The unverified `iss` only selects an allowlisted issuer; its key is chosen by `kid` (and an
   allowlisted `jku`), and must be bound to the same algorithm as the header.
4. PyJWT verifies the signature with `algorithms=[alg]`; its own claim checks are switched off and
   done here instead, with an injectable `now` and one leeway for exp, nbf and iat.
5. `aud` must be the exact URL called; `jti` is recorded LAST, only for an otherwise valid token, so
   invalid tokens cannot burn jti values and a replay is caught across workers (database).
Every failure is an AuthenticationFailed with a reason code for logs; nothing here logs or keeps
the token.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.utils import base64url_decode

from .errors import AuthenticationFailed
from .jwks import KeyStore
from .keys import ALLOWED_ALGORITHMS, MAX_KID_LENGTH
from .replay import MAX_JTI_LENGTH, JtiStore
from .settings import AuthConfig

MAX_TOKEN_LENGTH = 16 * 1024
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_PYJWT_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    "enforce_minimum_key_length": True,
}


@dataclass(frozen=True)
class Claims:
    """What a verified token tells us. Safe to log: iss, tenant, jti (spec: never the token itself)."""

    iss: str
    jti: str
    exp: float
    iat: float
    aud: tuple[str, ...]
    tenant: str | None
    kid: str
    alg: str


def _fail(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(reason)


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None:
        raise _fail("missing-header")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _fail("not-bearer")
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise _fail("malformed-header")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _fail("token-too-large")
    if not _COMPACT_JWS.match(token):
        raise _fail("malformed-token")
    return token


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(base64url_decode(segment.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise _fail("malformed-token") from None
    if not isinstance(value, dict):
        raise _fail("malformed-token")
    return value


def _check_header(header: dict[str, Any]) -> tuple[str, str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise _fail("alg-not-allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        raise _fail("missing-kid")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise _fail("typ-not-jwt")
    if "crit" in header or "b64" in header:
        raise _fail("header-not-supported")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise _fail("malformed-token")
    return alg, kid, jku


def _numeric_date(payload: dict[str, Any], name: str) -> float | None:
    """RFC 7519 NumericDate (int or float seconds); None when absent, a failure when not a number."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"invalid-{name}")
    return float(value)


def _audiences(payload: dict[str, Any]) -> tuple[str, ...]:
    aud = payload.get("aud")
    if aud is None or aud == "" or aud == []:
        raise _fail("missing-aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    raise _fail("aud-mismatch")


def verify_client_jwt(
    authorization_header: str | None,
    expected_aud: str,
    config: AuthConfig,
    keys: KeyStore,
    replay: JtiStore,
    now: float | None = None,
) -> Claims:
    """Verify the request's client JWT and return its claims, or raise AuthenticationFailed(reason).

    `expected_aud` is the exact public URL of the endpoint being called; `now` is epoch seconds
    (default: the system clock). Raises ReplayStoreUnavailable if the jti store cannot be reached.
    """
    now = time.time() if now is None else now
    token = _bearer_token(authorization_header)
    header_b64, payload_b64, signature_b64 = token.split(".")
    alg, kid, jku = _check_header(_json_segment(header_b64))
    if not signature_b64:
        raise _fail("bad-signature")

    unverified_iss = _json_segment(payload_b64).get("iss")
    issuer = config.issuers.get(unverified_iss) if isinstance(unverified_iss, str) else None
    if issuer is None:
        raise _fail("unknown-iss")
    key = keys.key_for(issuer, kid, jku)
    if key.alg != alg:
        raise _fail("key-alg-mismatch")
    try:
        payload = jwt.decode(token, key.public_key, algorithms=[key.alg], options=_PYJWT_OPTIONS)
    except jwt.InvalidSignatureError:
        raise _fail("bad-signature") from None
    except jwt.PyJWTError:
        raise _fail("malformed-token") from None
    if payload.get("iss") != issuer.iss:  # verified bytes: must be the issuer whose key we used
        raise _fail("unknown-iss")

    leeway = config.leeway_s
    exp = _numeric_date(payload, "exp")
    iat = _numeric_date(payload, "iat")
    nbf = _numeric_date(payload, "nbf")
    if exp is None:
        raise _fail("missing-exp")
    if iat is None:
        raise _fail("missing-iat")
    if now >= exp + leeway:
        raise _fail("expired")
    if nbf is not None and nbf > now + leeway:
        raise _fail("not-yet-valid")
    if iat > now + leeway:
        raise _fail("iat-in-future")

    audiences = _audiences(payload)
    if expected_aud not in audiences:
        raise _fail("aud-mismatch")

    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _fail("missing-jti")
    if len(jti) > MAX_JTI_LENGTH:
        raise _fail("invalid-jti")

    tenant = payload.get("tenant")
    if issuer.tenants is not None and (not isinstance(tenant, str) or tenant not in issuer.tenants):
        raise _fail("tenant-not-allowed")

    if not replay.first_use(issuer.iss, jti, expires_at=exp + leeway, now=now):
        raise _fail("replay")
    return Claims(
        iss=issuer.iss,
        jti=jti,
        exp=exp,
        iat=iat,
        aud=audiences,
        tenant=tenant if isinstance(tenant, str) else None,
        kid=kid,
        alg=alg,
    )
