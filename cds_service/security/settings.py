"""Client-authentication configuration (CDS Hooks §Trusting CDS Clients), validated at start-up.

Read from an environment-like mapping (os.environ in production, a dict in tests):

- CDS_AUTH_REQUIRED         true/false (default false: development only; a loud warning is logged)
- CDS_TRUSTED_ISSUERS       inline JSON list of issuers, or
- CDS_TRUSTED_ISSUERS_FILE  path to a JSON file holding that list (not both)
- CDS_JWT_LEEWAY_S          clock skew tolerated on exp/nbf/iat, default 60, at most 300
- CDS_JWKS_REFRESH_MIN_S    at most one JWKS download per URL per this many seconds, default 60
- CDS_ENV                   read only to refuse unsafe choices when it is "production"

Each issuer:
    {"iss": "https://ehr.example.org",            # exact `iss` claim value
     "jwks": {"keys": [...]} | "jwks_file": "keys.json" | "jwks_url": "https://ehr.example.org/jwks.json",
     "jku_allowlist": ["https://ehr.example.org/.well-known/jwks.json"],   # optional, exact URLs
     "tenants": ["org-1"]}                          # optional: then `tenant` must be one of these

At least one key source (jwks, jwks_file, jwks_url or jku_allowlist) is required. A relative
`jwks_file` is resolved against the directory of CDS_TRUSTED_ISSUERS_FILE (or the working directory
for inline JSON). Every error names the variable, the issuer and the field, so a typo stops
start-up instead of turning into unexplained 401s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import SecurityConfigError
from .keys import VerificationKey, parse_jwk_set

ENV_REQUIRED = "CDS_AUTH_REQUIRED"
ENV_ISSUERS = "CDS_TRUSTED_ISSUERS"
ENV_ISSUERS_FILE = "CDS_TRUSTED_ISSUERS_FILE"
ENV_LEEWAY = "CDS_JWT_LEEWAY_S"
ENV_REFRESH = "CDS_JWKS_REFRESH_MIN_S"
ENV_ENV = "CDS_ENV"
AUTH_VARIABLES = (ENV_REQUIRED, ENV_ISSUERS, ENV_ISSUERS_FILE, ENV_LEEWAY, ENV_REFRESH)

DEFAULT_LEEWAY_S = 60
MAX_LEEWAY_S = 300
DEFAULT_REFRESH_MIN_S = 60
MAX_REFRESH_MIN_S = 86_400
MAX_ISS_LENGTH = 255  # the seen_jti column width
# The sandbox signs with a private key that is published in its repository: anyone can mint its tokens.
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"

_ISSUER_FIELDS = frozenset({"iss", "jwks", "jwks_file", "jwks_url", "jku_allowlist", "tenants"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class TrustedIssuer:
    """One allowlisted client (or its identity provider) and where its keys may come from."""

    iss: str
    static_keys: Mapping[str, VerificationKey] = field(default_factory=dict)  # jwks / jwks_file
    jwks_url: str | None = None
    jku_allowlist: frozenset[str] = frozenset()
    tenants: frozenset[str] | None = None  # None: tenant not checked


@dataclass(frozen=True)
class AuthConfig:
    required: bool
    issuers: Mapping[str, TrustedIssuer]
    leeway_s: int = DEFAULT_LEEWAY_S
    jwks_refresh_min_s: int = DEFAULT_REFRESH_MIN_S
    production: bool = False


def load_auth_config(env: Mapping[str, str]) -> AuthConfig:
    """Parse and validate everything; raise SecurityConfigError naming what is wrong."""
    production = str(env.get(ENV_ENV, "development")).strip().lower() == "production"
    required = _parse_bool(env.get(ENV_REQUIRED, "false"), ENV_REQUIRED)
    leeway = _parse_int(env.get(ENV_LEEWAY), ENV_LEEWAY, DEFAULT_LEEWAY_S, 0, MAX_LEEWAY_S)
    refresh = _parse_int(env.get(ENV_REFRESH), ENV_REFRESH, DEFAULT_REFRESH_MIN_S, 1, MAX_REFRESH_MIN_S)

    inline = env.get(ENV_ISSUERS, "").strip()
    path_text = env.get(ENV_ISSUERS_FILE, "").strip()
    if inline and path_text:
        raise SecurityConfigError(f"set either {ENV_ISSUERS} or {ENV_ISSUERS_FILE}, not both")
    issuers: dict[str, TrustedIssuer] = {}
    if inline:
        issuers = _parse_issuers(_load_json_text(inline, ENV_ISSUERS), ENV_ISSUERS, Path.cwd(), production)
    elif path_text:
        path = Path(path_text)
        issuers = _parse_issuers(_load_json_file(path, ENV_ISSUERS_FILE), ENV_ISSUERS_FILE,
                                 path.resolve().parent, production)
    if required and not issuers:
        raise SecurityConfigError(
            f"{ENV_REQUIRED} is true but no trusted issuer is configured (set {ENV_ISSUERS} or {ENV_ISSUERS_FILE})"
        )
    return AuthConfig(required=required, issuers=issuers, leeway_s=leeway, jwks_refresh_min_s=refresh,
                      production=production)


def _parse_bool(raw: Any, name: str) -> bool:
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SecurityConfigError(f"{name}: '{raw}' is not a boolean (use true/false)")


def _parse_int(raw: Any, name: str, default: int, low: int, high: int) -> int:
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise SecurityConfigError(f"{name}: '{raw}' is not an integer") from None
    if not low <= value <= high:
        raise SecurityConfigError(f"{name}: {value} must be between {low} and {high}")
    return value


def _load_json_text(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SecurityConfigError(f"{where}: not valid JSON ({exc.args[0] if exc.args else 'cannot parse'})") from None


def _load_json_file(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityConfigError(f"{where}: cannot read '{path}' ({exc.strerror or type(exc).__name__})") from None
    return _load_json_text(text, f"{where} ('{path}')")


def _check_url(value: Any, where: str, production: bool) -> str:
    """JWKS locations: absolute http(s) URLs; plain http is refused in production (keys could be swapped)."""
    if not isinstance(value, str) or not value.strip():
        raise SecurityConfigError(f"{where}: must be a non-empty URL string")
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise SecurityConfigError(f"{where}: '{value}' must be an absolute https:// URL")
    if parts.scheme == "http" and production:
        raise SecurityConfigError(f"{where}: '{value}' is plain http, refused in production (use https)")
    if parts.username or parts.password or parts.fragment:
        raise SecurityConfigError(f"{where}: '{value}' must not contain credentials or a #fragment")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise SecurityConfigError(f"{where}: must be a non-empty list of non-empty strings")
    return list(value)


def _parse_issuers(document: Any, variable: str, base_dir: Path, production: bool) -> dict[str, TrustedIssuer]:
    if not isinstance(document, list) or not document:
        raise SecurityConfigError(f"{variable}: must be a non-empty JSON list of issuer objects")
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(document):
        where = f"{variable}[{index}]"
        if not isinstance(entry, dict):
            raise SecurityConfigError(f"{where}: must be a JSON object")
        iss = entry.get("iss")
        if not isinstance(iss, str) or not iss.strip() or len(iss) > MAX_ISS_LENGTH:
            raise SecurityConfigError(f"{where}: field 'iss' must be a non-empty string of at most {MAX_ISS_LENGTH} "
                                      "characters (the exact iss claim value)")
        where = f"{variable}[{index}] (iss '{iss}')"
        unknown = sorted(set(entry) - _ISSUER_FIELDS)
        if unknown:
            raise SecurityConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                                      f"allowed: {', '.join(sorted(_ISSUER_FIELDS))}")
        if iss in issuers:
            raise SecurityConfigError(f"{where}: issuer listed more than once")
        if production and iss.rstrip("/") == SANDBOX_ISSUER:
            raise SecurityConfigError(f"{where}: the CDS Hooks sandbox's private key is public; "
                                      "trusting it is refused in production")
        if "jwks" in entry and "jwks_file" in entry:
            raise SecurityConfigError(f"{where}: set 'jwks' or 'jwks_file', not both")
        static: dict[str, VerificationKey] = {}
        if "jwks" in entry:
            static = parse_jwk_set(entry["jwks"], where=f"{where} field 'jwks'", strict=True)
        elif "jwks_file" in entry:
            raw_path = entry["jwks_file"]
            if not isinstance(raw_path, str) or not raw_path.strip():
                raise SecurityConfigError(f"{where}: field 'jwks_file' must be a path string")
            path = Path(raw_path) if Path(raw_path).is_absolute() else base_dir / raw_path
            static = parse_jwk_set(_load_json_file(path, f"{where} field 'jwks_file'"),
                                   where=f"{where} field 'jwks_file' ('{path}')", strict=True)
        if ("jwks" in entry or "jwks_file" in entry) and not static:
            raise SecurityConfigError(f"{where}: the JWK Set holds no usable signing key (EC P-384 or RSA)")
        jwks_url = None
        if "jwks_url" in entry:
            jwks_url = _check_url(entry["jwks_url"], f"{where} field 'jwks_url'", production)
        allow: list[str] = []
        if "jku_allowlist" in entry:
            allow = _string_list(entry["jku_allowlist"], f"{where} field 'jku_allowlist'")
            for i, url in enumerate(allow):
                _check_url(url, f"{where} field 'jku_allowlist[{i}]'", production)
        tenants = None
        if "tenants" in entry:
            tenants = frozenset(_string_list(entry["tenants"], f"{where} field 'tenants'"))
        if not static and jwks_url is None and not allow:
            raise SecurityConfigError(
                f"{where}: needs a key source: 'jwks', 'jwks_file', 'jwks_url' or 'jku_allowlist'"
            )
        issuers[iss] = TrustedIssuer(iss=iss, static_keys=static, jwks_url=jwks_url,
                                     jku_allowlist=frozenset(allow), tenants=tenants)
    return issuers
