"""`b12-cds explain-token`: why a client JWT would be refused, for the operator, never for the client.

The HTTP answer to a refused token stays a bare 401 (the same body for every reason, so probing
learns nothing); the reason code goes to the log. Registering a new EHR still needs a way to see the
reason without reading logs, so this runs the very same verification (`verify_client_jwt`, the
configured issuers and keys) on a token given on the command line, and prints what the token says,
which check refused it, and what to configure. It records nothing: the jti is not stored (a later
real call with the same token still works) and the token itself is never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jwt.utils import base64url_decode

from .errors import AuthenticationFailed, SecurityConfigError
from .jwks import JwksFetchError, KeyStore, fetch_jwks_document
from .settings import ENV_ISSUERS, ENV_ISSUERS_FILE, AuthConfig, load_auth_config
from .verify import verify_client_jwt

# Reason code (as logged) -> what it means and what to do about it.
REASONS: dict[str, str] = {
    "missing-header": "no Authorization header was sent",
    "not-bearer": "the Authorization header is not 'Bearer <token>'",
    "malformed-header": "the Authorization header holds spaces or nothing after 'Bearer'",
    "token-too-large": "the token is larger than 16 KB",
    "malformed-token": "the token is not a compact JWS with a JSON header and payload",
    "alg-not-allowed": "alg must be ES384 or RS384 (none, HS* and others are refused)",
    "missing-kid": "the header has no kid; CDS Hooks requires one",
    "typ-not-jwt": "the header's typ is present but not JWT",
    "header-not-supported": "the header uses crit or b64, which this service does not implement",
    "unknown-iss": f"iss is not a trusted issuer: add it to {ENV_ISSUERS} / {ENV_ISSUERS_FILE} (exact string)",
    "jku-not-allowed": "the kid is not among the issuer's configured keys, and the token's jku is not on the "
                       "issuer's jku_allowlist, so it was ignored (never fetched): register the issuer's public "
                       "key inline ('jwks' or 'jwks_file') or add the exact jku URL to 'jku_allowlist'",
    "unknown-kid": "no configured or downloadable key of this issuer has this kid: register the key, or check "
                   "the issuer's jwks_url / allowlisted jku serves it",
    "key-alg-mismatch": "the key with this kid is bound to another algorithm than the header's alg",
    "bad-signature": "the signature does not verify with the issuer's key of this kid",
    "missing-exp": "the token has no exp",
    "missing-iat": "the token has no iat",
    "invalid-exp": "exp is not a number", "invalid-iat": "iat is not a number", "invalid-nbf": "nbf is not a number",
    "expired": "the token has expired (exp + CDS_JWT_LEEWAY_S is in the past)",
    "not-yet-valid": "nbf is in the future", "iat-in-future": "iat is in the future (clock skew beyond the leeway?)",
    "missing-aud": "the token has no aud",
    "aud-mismatch": "aud is not the exact URL called: set CDS_PUBLIC_BASE_URL to the URL the EHR uses "
                    "(including any path prefix), and give the EHR <base>/cds-services",
    "missing-jti": "the token has no jti", "invalid-jti": "the jti is longer than 255 characters",
    "tenant-not-allowed": "the issuer has 'tenants' configured and the token's tenant is not one of them",
    "replay": "this jti was already used",
}


class _DryRunReplay:
    """Stands in for the jti store: nothing is recorded, so the token stays usable."""

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:  # noqa: ARG002
        return True


@dataclass(frozen=True)
class Diagnosis:
    accepted: bool
    reason: str | None
    lines: tuple[str, ...]


def _segment(part: str) -> Any:
    try:
        return json.loads(base64url_decode(part.encode("ascii")))
    except (ValueError, UnicodeError):
        return None


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value} ({datetime.fromtimestamp(value, UTC).isoformat()})"
    return repr(value)


def _no_fetch(url: str) -> bytes:
    raise JwksFetchError("downloads disabled (--no-fetch)")


def diagnose_token(token: str, env: Mapping[str, str], *, aud: str | None = None, at: float | None = None,
                   fetch: bool = True) -> Diagnosis:
    """Run the service's verification on `token` with the auth configuration in `env`."""
    lines: list[str] = []
    try:
        config: AuthConfig = load_auth_config(env)
    except SecurityConfigError as exc:
        return Diagnosis(False, "config", (f"configuration error: {exc}",))
    if not config.required:
        lines.append("note: CDS_AUTH_REQUIRED is not true here, so the service would not check tokens at all; "
                     "checking against the configured issuers anyway")
    parts = token.strip().split(".")
    header = _segment(parts[0]) if len(parts) == 3 else None
    payload = _segment(parts[1]) if len(parts) == 3 else None
    if isinstance(header, dict):
        lines.append("header: " + ", ".join(f"{k}={header.get(k)!r}" for k in ("alg", "typ", "kid", "jku")
                                            if k in header))
    if isinstance(payload, dict):
        jti = "present" if payload.get("jti") else "absent"
        lines.append(f"iss={payload.get('iss')!r} aud={payload.get('aud')!r} jti={jti}")
        lines.append(f"iat={_when(payload.get('iat'))} exp={_when(payload.get('exp'))}")
        issuer = config.issuers.get(payload.get("iss")) if isinstance(payload.get("iss"), str) else None
        if issuer is not None and isinstance(header, dict):
            kid, jku = header.get("kid"), header.get("jku")
            lines.append(f"issuer configured: {len(issuer.static_keys)} inline key(s) "
                         f"{sorted(issuer.static_keys)}, jwks_url={issuer.jwks_url!r}, "
                         f"jku_allowlist={sorted(issuer.jku_allowlist)}")
            lines.append(f"kid {kid!r} is {'' if kid in issuer.static_keys else 'not '}among the inline keys")
            if jku is not None and jku not in issuer.jku_allowlist:
                lines.append(f"jku {jku!r} is not on the issuer's jku_allowlist: ignored, never fetched")
    expected = aud
    if expected is None:
        token_aud = payload.get("aud") if isinstance(payload, dict) else None
        expected = token_aud[0] if isinstance(token_aud, list) and token_aud else token_aud
        lines.append("aud: not checked against a URL (pass --aud with the exact URL the client called)")
        if not isinstance(expected, str):
            expected = ""
    now = time.time() if at is None else at
    keys = KeyStore(config, fetch=fetch_jwks_document if fetch else _no_fetch)
    try:
        verify_client_jwt(f"Bearer {token.strip()}", expected, config, keys, _DryRunReplay(), now=now)  # type: ignore[arg-type]
    except AuthenticationFailed as exc:
        lines.append(f"REFUSED ({exc.reason}): {REASONS.get(exc.reason, 'see cds_service/security/verify.py')}")
        return Diagnosis(False, exc.reason, tuple(lines))
    lines.append("ACCEPTED: the service would verify this token (the jti was not recorded)")
    return Diagnosis(True, None, tuple(lines))
