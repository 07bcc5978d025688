"""Flask wiring: every request carries a verified client JWT when CDS_AUTH_REQUIRED is true.

CDS Hooks requires the JWT on discovery, service calls and feedback alike, so everything is
protected except the probes (/healthz, /readyz: orchestrators hold no client key), the rule
explanation pages (/explain: knowledge only, opened from card links in a plain browser) and CORS
preflights (browsers never send Authorization on OPTIONS; Flask's automatic OPTIONS answer exposes
no data, and no route of ours may implement OPTIONS itself).

The expected `aud` is the exact public URL of the endpoint: CDS_PUBLIC_BASE_URL + path. Behind a
reverse proxy or TLS terminator the request's own URL has the wrong scheme/host, so set
CDS_PUBLIC_BASE_URL there (including any path prefix the proxy adds); without it we fall back to
`request.base_url`, which is right only when clients reach the process directly.

A refusal is a bare 401 (same body for every reason, `WWW-Authenticate: Bearer`); the reason code
goes to an INFO log line, never the token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from sqlalchemy import Engine

from .errors import AuthenticationFailed, ReplayStoreUnavailable, SecurityConfigError
from .jwks import KeyStore
from .replay import ReplayGuard
from .settings import AuthConfig, load_auth_config
from .verify import verify_client_jwt

log = logging.getLogger("cds_service.security")

EXTENSION_KEY = "cds_jwt_auth"
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})
# The rule explanation pages (api/explain.py) hold only knowledge, no patient data, and are opened
# from card links in a browser that has no client JWT to send.
UNAUTHENTICATED_PREFIXES = ("/explain/",)
_UNAUTHORIZED_BODY = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "login", "diagnostics": "authentication failed"}],
    }
)
_UNAVAILABLE_BODY = json.dumps(
    {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "transient", "diagnostics": "authentication temporarily unavailable"}],
    }
)


@dataclass(frozen=True)
class JwtAuthState:
    """Kept in app.extensions[EXTENSION_KEY]; keys/replay are None when auth is off."""

    config: AuthConfig
    keys: KeyStore | None
    replay: ReplayGuard | None
    public_base_url: str

    @property
    def enabled(self) -> bool:
        return self.config.required


def auth_enabled(app: Flask) -> bool:
    """True when install_jwt_auth ran on `app` with CDS_AUTH_REQUIRED true."""
    state = app.extensions.get(EXTENSION_KEY)
    return isinstance(state, JwtAuthState) and state.enabled


def is_unauthenticated_path(path: str) -> bool:
    """Probes and the explanation pages: open even when client JWT verification is on."""
    return path in UNAUTHENTICATED_PATHS or path == "/explain" or path.startswith(UNAUTHENTICATED_PREFIXES)


def _check_base_url(public_base_url: str) -> str:
    if not public_base_url:
        return ""
    parts = urlsplit(public_base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise SecurityConfigError(
            f"CDS_PUBLIC_BASE_URL: '{public_base_url}' must be the absolute external base URL, e.g. https://cds.example.org"
        )
    return public_base_url.rstrip("/")


def _response(body: str, status: int) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def install_jwt_auth(app: Flask, auth: AuthConfig | Mapping[str, str], db_engine: Engine,
                     public_base_url: str) -> None:
    """Guard `app` with the auth settings (Settings.auth), or parse them now from an environment-like
    mapping (SecurityConfigError at start-up).

    Call after the request-id middleware so refusals carry the request id.
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError("install_jwt_auth called twice on the same app")
    config = auth if isinstance(auth, AuthConfig) else load_auth_config(auth)
    base = _check_base_url(public_base_url)
    if not config.required:
        app.extensions[EXTENSION_KEY] = JwtAuthState(config, None, None, base)
        log.warning(
            "client JWT verification is OFF (development): any caller can use every endpoint; "
            "set CDS_AUTH_REQUIRED=true and CDS_TRUSTED_ISSUERS for any real deployment"
        )
        return
    keys = KeyStore(config)
    replay = ReplayGuard(db_engine)
    app.extensions[EXTENSION_KEY] = JwtAuthState(config, keys, replay, base)
    if not base:
        log.warning("CDS_PUBLIC_BASE_URL is not set: the JWT audience is checked against the URL this process "
                    "sees, which differs from the client's behind a proxy")
    log.info("client JWT verification is ON")

    @app.before_request
    def require_client_jwt() -> Response | None:
        if request.method == "OPTIONS" or is_unauthenticated_path(request.path):
            return None
        expected_aud = base + request.path if base else request.base_url
        try:
            claims = verify_client_jwt(request.headers.get("Authorization"), expected_aud, config, keys, replay)
        except AuthenticationFailed as exc:
            g.error_code = "login"
            log.info(
                "client authentication failed",
                extra={"fields": {"request_id": g.get("request_id"), "error_code": exc.reason,
                                  "method": request.method, "path": request.path}},
            )
            response = _response(_UNAUTHORIZED_BODY, 401)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except ReplayStoreUnavailable:
            g.error_code = "transient"
            log.error(
                "client authentication unavailable: jti store unreachable",
                extra={"fields": {"request_id": g.get("request_id"), "error_code": "replay-store-unavailable"}},
            )
            response = _response(_UNAVAILABLE_BODY, 503)
            response.headers["Retry-After"] = "5"
            return response
        g.client_claims = claims  # iss / tenant / jti for later use; never the token
        return None
