"""Configuration from `CDS_*` environment variables, parsed and validated once at start-up.

One frozen, typed `Settings` object is the only place configuration is read: every value is parsed
here (integers, booleans, lists, the pinned clock, the threshold overrides, the fetch and the client
authentication settings), so a bad value stops start-up with a message naming the variable instead
of failing on the first request, and consumers read typed fields, never raw strings.
`create_app(config)` accepts a mapping with the same names without the prefix
(e.g. {"DATABASE_URL": ...}) so tests configure the app without touching the process environment.

The variable names and defaults are the README's configuration table; `VARIABLES` lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .security.settings import AUTH_VARIABLES, ENV_ENV, AuthConfig, load_auth_config
from .startup import StartupError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the checkout, when running from one (the preview's fixtures/)
# Package data: in the checkout `cds_service/hooks` and `cds_service/openapi.yaml` are links to the
# top-level `hooks/` and `openapi.yaml` that people edit; a built wheel holds copies of them.
DEFAULT_HOOKS_DIR = PACKAGE_DIR / "hooks"
OPENAPI_FILE = PACKAGE_DIR / "openapi.yaml"

AuthSettings = AuthConfig  # client JWT verification (security/settings.py parses and checks it)


class ConfigError(StartupError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class FetchSettings:
    """Fetching what prefetch lacks (fhir/fetch.py): CDS_FHIR_SERVER_ALLOWLIST and CDS_FETCH_*."""

    allowlist: tuple[str, ...] = ()  # origins or URL prefixes the service may call
    budget_ms: int = 400  # whole-request budget for FHIR fetches (hard ceiling 2000)
    call_timeout_ms: int = 300
    max_pages: int = 10
    max_entries: int = 2000
    max_response_bytes: int = 10 * 1024 * 1024
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0


@dataclass(frozen=True)
class Settings:
    """Every CDS_* setting, typed. Built by `load_settings`; the defaults are the README table's."""

    env: str = "development"  # development | production
    database_url: str = "sqlite:///var/b12-cds.db"
    hooks_dir: Path = DEFAULT_HOOKS_DIR
    knowledge_dir: Path | None = None  # None: the knowledge shipped in the package
    max_body_bytes: int = 5 * 1024 * 1024
    max_prefetch_entries: int = 20_000
    cors_origins: tuple[str, ...] = ("*",)  # EHR origins allowed by CORS, or ("*",)
    evaluation_time: datetime | None = None  # pinned "now"; development/test only
    public_base_url: str = ""  # e.g. https://cds.example.org, no trailing slash (JWT aud behind proxies)
    log_level: str = "INFO"
    testing: bool = False
    debug: bool = False  # Flask debug mode (tracebacks in responses): development only
    suppression_days: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # per family
    shadow_services: frozenset[str] = frozenset()  # service ids that evaluate and record but return no cards
    threshold_overrides: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    retention_days: int = 365  # `b12-cds purge` deletes issued cards and feedback older than this
    preview_enabled: bool | None = None  # None: on in development, off in production
    metrics_port: int = 0  # b12-cds serve: also expose /metrics on this port, without client JWT (0: off)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    auth: AuthSettings = field(default_factory=lambda: AuthConfig(required=False, issuers=MappingProxyType({})))

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def preview_on(self) -> bool:
        """The /preview page: CDS_PREVIEW_ENABLED if set, else on only in development."""
        return (not self.is_production) if self.preview_enabled is None else self.preview_enabled


# --- parsers: (variable name, raw value) -> typed value, or ConfigError naming the variable ----------

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ConfigError(f"{name}: '{raw}' is not a boolean (use true/false)")


def _optional_bool(name: str, raw: Any) -> bool | None:
    return None if str(raw).strip() == "" else _bool(name, raw)


def _int(low: int, high: int, why: str = "") -> Callable[[str, Any], int]:
    def parse(name: str, raw: Any) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{name}: '{raw}' is not an integer") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}: must be between {low} and {high}{why}")
        return value

    return parse


def _list(_name: str, raw: Any) -> tuple[str, ...]:
    return tuple(e.strip() for e in str(raw).split(",") if e.strip())


def _directory(name: str, raw: Any) -> Path:
    path = Path(str(raw).strip())
    if not path.is_dir():
        raise ConfigError(f"{name}: '{raw}' is not a directory")
    return path


def _optional_directory(name: str, raw: Any) -> Path | None:
    return None if str(raw).strip() == "" else _directory(name, raw)


def _env(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if text not in {"development", "production"}:
        raise ConfigError(f"{name}: '{raw}' must be 'development' or 'production'")
    return text


def _database_url(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if not (text.startswith("sqlite:") or text.startswith("postgresql")):
        raise ConfigError(f"{name}: only sqlite:/// and postgresql+psycopg:// URLs are supported")
    return text


def _log_level(name: str, raw: Any) -> str:
    text = str(raw).strip().upper()
    if text not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{name}: '{raw}' must be DEBUG, INFO, WARNING or ERROR")
    return text


def _instant(name: str, raw: Any) -> datetime | None:
    text = str(raw).strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}: '{text}' is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise ConfigError(f"{name}: '{text}' needs a time zone (e.g. 2026-11-01T12:00:00Z)")
    return value


def _base_url(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{name}: '{text}' must be the absolute external base URL, e.g. https://cds.example.org")
    return text.rstrip("/")


def _allowlist(name: str, raw: Any) -> tuple[str, ...]:
    entries = _list(name, raw)
    for entry in entries:
        if not (entry.startswith("https://") or entry.startswith("http://")):
            raise ConfigError(f"{name}: '{entry}' must start with https:// or http://")
    return entries


def _threshold_overrides(name: str, raw: Any) -> Mapping[str, float]:
    """'key=number,...'; the knowledge loader checks that each key exists."""
    values: dict[str, float] = {}
    for part in _list(name, raw):
        key, _, number = part.partition("=")
        try:
            values[key.strip()] = float(number)
        except ValueError:
            raise ConfigError(f"{name}: '{part}' must be key=number") from None
    return MappingProxyType(values)


def parse_suppression_days(name: str, raw: Any) -> Mapping[str, int]:
    """'family=days,...' over the defaults (alerting.py); the family names are checked by the policy."""
    days: dict[str, int] = {}
    for part in _list(name, raw):
        family, _, value = part.partition("=")
        if not value.strip().isdigit() or int(value) > 365:
            raise ConfigError(f"{name}: '{part}' needs a whole number of days (0-365)")
        days[family.strip()] = int(value)
    return MappingProxyType(days)


# Variable (without CDS_) -> (where the value goes, parser). "fetch.x" is a field of Settings.fetch.
# The CDS_AUTH_* / trusted-issuer variables are parsed together by security.settings.load_auth_config.
VARIABLES: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "ENV": ("env", _env),
    "DATABASE_URL": ("database_url", _database_url),
    "HOOKS_DIR": ("hooks_dir", _directory),
    "KNOWLEDGE_DIR": ("knowledge_dir", _optional_directory),
    "MAX_BODY_BYTES": ("max_body_bytes", _int(1024, 64 * 1024 * 1024)),
    "MAX_PREFETCH_ENTRIES": ("max_prefetch_entries", _int(1, 1_000_000)),
    "CORS_ORIGINS": ("cors_origins", _list),
    "EVALUATION_TIME": ("evaluation_time", _instant),
    "PUBLIC_BASE_URL": ("public_base_url", _base_url),
    "LOG_LEVEL": ("log_level", _log_level),
    "TESTING": ("testing", _bool),
    "DEBUG": ("debug", _bool),
    "SUPPRESSION_DAYS": ("suppression_days", parse_suppression_days),
    "SHADOW_SERVICES": ("shadow_services", lambda name, raw: frozenset(_list(name, raw))),
    "THRESHOLD_OVERRIDES": ("threshold_overrides", _threshold_overrides),
    "RETENTION_DAYS": ("retention_days", _int(1, 3650)),
    "PREVIEW_ENABLED": ("preview_enabled", _optional_bool),
    "METRICS_PORT": ("metrics_port", _int(0, 65535, " (0: off)")),
    "FHIR_SERVER_ALLOWLIST": ("fetch.allowlist", _allowlist),
    "FETCH_BUDGET_MS": ("fetch.budget_ms", _int(10, 2000, " (the hard ceiling)")),
    "FETCH_CALL_TIMEOUT_MS": ("fetch.call_timeout_ms", _int(10, 2000)),
    "FETCH_MAX_PAGES": ("fetch.max_pages", _int(1, 10**9)),
    "FETCH_MAX_ENTRIES": ("fetch.max_entries", _int(1, 10**9)),
    "FETCH_MAX_RESPONSE_BYTES": ("fetch.max_response_bytes", _int(1, 10**12)),
    "FETCH_BREAKER_FAILURES": ("fetch.breaker_failures", _int(1, 10**6)),
    "FETCH_BREAKER_COOLDOWN_S": ("fetch.breaker_cooldown_s", lambda name, raw: float(_int(0, 86_400)(name, raw))),
}
_AUTH_KEYS = frozenset(name.removeprefix("CDS_") for name in AUTH_VARIABLES)


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read CDS_* variables (then apply overrides), parse each once and validate them together."""
    environ = os.environ if environ is None else environ
    overrides = {k.upper(): v for k, v in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(VARIABLES) - _AUTH_KEYS)
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")

    def raw(key: str) -> Any:
        return overrides[key] if key in overrides else environ.get(f"CDS_{key}")

    top: dict[str, Any] = {}
    fetch: dict[str, Any] = {}
    for key, (target, parse) in VARIABLES.items():
        value = raw(key)
        if value is None:
            continue
        section, _, name = target.rpartition(".")
        (fetch if section == "fetch" else top)[name] = parse(f"CDS_{key}", value)
    env = top.get("env", "development")
    auth_env = {f"CDS_{key}": _auth_text(raw(key)) for key in _AUTH_KEYS if raw(key) is not None}
    auth = load_auth_config({**auth_env, ENV_ENV: env})
    settings = Settings(**top, fetch=FetchSettings(**fetch), auth=auth)
    validate_settings(settings, environ)
    return settings


def _auth_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def validate_settings(s: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Checks across variables, and what the production profile refuses."""
    environ = os.environ if environ is None else environ
    if not s.is_production:
        return
    for entry in s.fetch.allowlist:
        if entry.startswith("http://"):
            raise ConfigError(f"CDS_FHIR_SERVER_ALLOWLIST: '{entry}' is plain http, refused in production")
    if s.evaluation_time is not None:
        raise ConfigError("CDS_EVALUATION_TIME: pinning the clock is refused in production")
    if "*" in s.cors_origins:
        raise ConfigError("CDS_CORS_ORIGINS: '*' is refused in production; list the EHR origins")
    if s.testing:
        raise ConfigError("CDS_TESTING: refused in production")
    if s.debug or str(environ.get("FLASK_DEBUG", "")).strip().lower() in _BOOL_TRUE:
        raise ConfigError("CDS_DEBUG / FLASK_DEBUG: debug mode is refused in production")
    if not s.auth.required:
        raise ConfigError("CDS_AUTH_REQUIRED: production refuses to start without client JWT verification "
                          "and trusted issuers (CDS_TRUSTED_ISSUERS or CDS_TRUSTED_ISSUERS_FILE)")
