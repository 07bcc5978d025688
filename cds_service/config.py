"""Configuration from `CDS_*` environment variables, validated once at start-up.

One frozen Settings object is the only place configuration is read, so a bad value stops start-up
with a message naming the variable instead of failing on the first request. `create_app(config)`
accepts a mapping with the same names without the prefix (e.g. {"DATABASE_URL": ...}) so tests
configure the app without touching the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from .startup import StartupError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the checkout, when running from one (the preview's fixtures/)
# Package data: in the checkout `cds_service/hooks` and `cds_service/openapi.yaml` are links to the
# top-level `hooks/` and `openapi.yaml` that people edit; a built wheel holds copies of them.
DEFAULT_HOOKS_DIR = PACKAGE_DIR / "hooks"
OPENAPI_FILE = PACKAGE_DIR / "openapi.yaml"


class ConfigError(StartupError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"  # development | production
    database_url: str = "sqlite:///var/b12-cds.db"
    hooks_dir: str = str(DEFAULT_HOOKS_DIR)
    knowledge_dir: str = ""  # empty: the knowledge shipped in the package
    max_body_bytes: int = 5 * 1024 * 1024
    max_prefetch_entries: int = 20_000
    cors_origins: str = "*"  # comma-separated origins, or *
    evaluation_time: str = ""  # pin "now" (ISO 8601); development/test only
    public_base_url: str = ""  # e.g. https://cds.example.org (JWT aud behind proxies)
    log_level: str = "INFO"
    testing: bool = False
    debug: bool = False  # Flask debug mode (tracebacks in responses): development only
    fhir_server_allowlist: str = ""  # comma-separated origins or URL prefixes the service may call
    fetch_budget_ms: int = 400  # whole-request budget for FHIR fetches (hard ceiling 2000)
    fetch_call_timeout_ms: int = 300
    fetch_max_pages: int = 10
    fetch_max_entries: int = 2000
    fetch_max_response_bytes: int = 10 * 1024 * 1024
    fetch_breaker_failures: int = 3
    fetch_breaker_cooldown_s: int = 30
    suppression_days: str = ""  # per family over the defaults, e.g. "mma-testing=30,folate-without-b12=7"
    shadow_services: str = ""  # comma-separated service ids that evaluate and record but return no cards
    threshold_overrides: str = ""  # per-site thresholds, e.g. "b12-total.deficient-below=148,mma.uln=0.36"
    retention_days: int = 365  # `b12-cds purge` deletes issued cards and feedback older than this
    preview_enabled: str = ""  # true/false; empty: on in development, off in production
    metrics_port: int = 0  # b12-cds serve: also expose /metrics on this port, without client JWT (0: off)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def preview_on(self) -> bool:
        """The /preview page: CDS_PREVIEW_ENABLED if set, else on only in development."""
        text = self.preview_enabled.strip().lower()
        return (not self.is_production) if text == "" else text in _BOOL_TRUE

    def threshold_override_values(self) -> dict[str, float]:
        """Parsed CDS_THRESHOLD_OVERRIDES; the knowledge loader checks the keys exist."""
        values: dict[str, float] = {}
        for part in (p.strip() for p in self.threshold_overrides.split(",") if p.strip()):
            key, _, number = part.partition("=")
            try:
                values[key.strip()] = float(number)
            except ValueError:
                raise ConfigError(f"CDS_THRESHOLD_OVERRIDES: '{part}' must be key=number") from None
        return values

    def shadow_service_ids(self) -> frozenset[str]:
        return frozenset(e.strip() for e in self.shadow_services.split(",") if e.strip())

    def allowlist_entries(self) -> tuple[str, ...]:
        return tuple(e.strip() for e in self.fhir_server_allowlist.split(",") if e.strip())

    def pinned_time(self) -> datetime | None:
        if not self.evaluation_time:
            return None
        return _parse_instant(self.evaluation_time, "CDS_EVALUATION_TIME")


def _parse_instant(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{name}: '{text}' is not an ISO 8601 date-time") from exc
    if value.tzinfo is None:
        raise ConfigError(f"{name}: '{text}' needs a time zone (e.g. 2026-11-01T12:00:00Z)")
    return value


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _coerce(name: str, raw: Any, target: type) -> Any:
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _BOOL_TRUE:
            return True
        if text in _BOOL_FALSE:
            return False
        raise ConfigError(f"CDS_{name}: '{raw}' is not a boolean (use true/false)")
    if target is int:
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"CDS_{name}: '{raw}' is not an integer") from exc
    return str(raw)


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read CDS_* variables (then apply overrides) and validate them together."""
    environ = os.environ if environ is None else environ
    overrides = {k.upper(): v for k, v in (overrides or {}).items()}
    known = {f.name.upper(): f for f in fields(Settings)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for upper, f in known.items():
        target = type(f.default)
        if upper in overrides:
            values[f.name] = _coerce(upper, overrides[upper], target)
        elif f"CDS_{upper}" in environ:
            values[f.name] = _coerce(upper, environ[f"CDS_{upper}"], target)
    settings = Settings(**values)
    validate_settings(settings)
    return settings


def validate_settings(s: Settings) -> None:
    if s.env not in {"development", "production"}:
        raise ConfigError(f"CDS_ENV: '{s.env}' must be 'development' or 'production'")
    if s.max_body_bytes < 1024 or s.max_body_bytes > 64 * 1024 * 1024:
        raise ConfigError("CDS_MAX_BODY_BYTES: must be between 1024 and 67108864")
    if not (s.database_url.startswith("sqlite:") or s.database_url.startswith("postgresql")):
        raise ConfigError("CDS_DATABASE_URL: only sqlite:/// and postgresql+psycopg:// URLs are supported")
    if not Path(s.hooks_dir).is_dir():
        raise ConfigError(f"CDS_HOOKS_DIR: '{s.hooks_dir}' is not a directory")
    if s.knowledge_dir and not Path(s.knowledge_dir).is_dir():
        raise ConfigError(f"CDS_KNOWLEDGE_DIR: '{s.knowledge_dir}' is not a directory")
    if not 1 <= s.max_prefetch_entries <= 1_000_000:
        raise ConfigError("CDS_MAX_PREFETCH_ENTRIES: must be between 1 and 1000000")
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"CDS_LOG_LEVEL: '{s.log_level}' must be DEBUG, INFO, WARNING or ERROR")
    s.pinned_time()  # validates the format
    s.threshold_override_values()  # validates the format
    if not 1 <= s.retention_days <= 3650:
        raise ConfigError("CDS_RETENTION_DAYS: must be between 1 and 3650")
    if s.preview_enabled.strip().lower() not in _BOOL_TRUE | _BOOL_FALSE:
        raise ConfigError(f"CDS_PREVIEW_ENABLED: '{s.preview_enabled}' is not a boolean (use true/false)")
    if not 0 <= s.metrics_port <= 65535:
        raise ConfigError("CDS_METRICS_PORT: must be between 0 (off) and 65535")
    if not 10 <= s.fetch_budget_ms <= 2000:
        raise ConfigError("CDS_FETCH_BUDGET_MS: must be between 10 and 2000 (the hard ceiling)")
    if not 10 <= s.fetch_call_timeout_ms <= 2000:
        raise ConfigError("CDS_FETCH_CALL_TIMEOUT_MS: must be between 10 and 2000")
    for name in ("fetch_max_pages", "fetch_max_entries", "fetch_max_response_bytes", "fetch_breaker_failures"):
        if getattr(s, name) < 1:
            raise ConfigError(f"CDS_{name.upper()}: must be at least 1")
    for entry in s.allowlist_entries():
        if not (entry.startswith("https://") or entry.startswith("http://")):
            raise ConfigError(f"CDS_FHIR_SERVER_ALLOWLIST: '{entry}' must start with https:// or http://")
        if s.is_production and entry.startswith("http://"):
            raise ConfigError(f"CDS_FHIR_SERVER_ALLOWLIST: '{entry}' is plain http, refused in production")
    if s.is_production:
        if s.evaluation_time:
            raise ConfigError("CDS_EVALUATION_TIME: pinning the clock is refused in production")
        if s.cors_origins.strip() == "*":
            raise ConfigError("CDS_CORS_ORIGINS: '*' is refused in production; list the EHR origins")
        if s.testing:
            raise ConfigError("CDS_TESTING: refused in production")
        if s.debug or os.environ.get("FLASK_DEBUG", "").strip().lower() in _BOOL_TRUE:
            raise ConfigError("CDS_DEBUG / FLASK_DEBUG: debug mode is refused in production")
