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

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_HOOKS_DIR = PROJECT_DIR / "hooks"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"  # development | production
    database_url: str = "sqlite:///var/b12-cds.db"
    hooks_dir: str = str(DEFAULT_HOOKS_DIR)
    knowledge_dir: str = ""  # empty: the knowledge shipped in the package
    max_body_bytes: int = 5 * 1024 * 1024
    cors_origins: str = "*"  # comma-separated origins, or *
    evaluation_time: str = ""  # pin "now" (ISO 8601); development/test only
    public_base_url: str = ""  # e.g. https://cds.example.org (JWT aud behind proxies)
    log_level: str = "INFO"
    testing: bool = False

    @property
    def is_production(self) -> bool:
        return self.env == "production"

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
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"CDS_LOG_LEVEL: '{s.log_level}' must be DEBUG, INFO, WARNING or ERROR")
    s.pinned_time()  # validates the format
    if s.is_production:
        if s.evaluation_time:
            raise ConfigError("CDS_EVALUATION_TIME: pinning the clock is refused in production")
        if s.cors_origins.strip() == "*":
            raise ConfigError("CDS_CORS_ORIGINS: '*' is refused in production; list the EHR origins")
        if s.testing:
            raise ConfigError("CDS_TESTING: refused in production")
