"""Settings are parsed once into typed values; consumers never parse a CDS_* string again."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from cds_service.config import (
    DEFAULT_HOOKS_DIR,
    VARIABLES,
    ConfigError,
    FetchSettings,
    Settings,
    load_settings,
)
from cds_service.security.settings import AUTH_VARIABLES
from tests.support.project import PROJECT

README = PROJECT / "README.md"
CLI_VARIABLES = {"CDS_HOST", "CDS_PORT", "CDS_WORKERS"}  # read by `b12-cds serve` itself (cli.py)
ISSUERS = json.dumps([{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks.json"}])


def test_defaults_are_the_typed_defaults():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.hooks_dir == DEFAULT_HOOKS_DIR and settings.knowledge_dir is None
    assert settings.cors_origins == ("*",) and settings.evaluation_time is None
    assert settings.fetch == FetchSettings() and settings.fetch.budget_ms == 400
    assert settings.auth.required is False and settings.auth.leeway_s == 60 and settings.auth.jwks_refresh_min_s == 60
    assert settings.preview_enabled is None and settings.preview_on is True


def test_every_value_is_parsed_into_its_type():
    settings = load_settings(environ={
        "CDS_MAX_BODY_BYTES": "4096",
        "CDS_CORS_ORIGINS": "https://a.example, https://b.example",
        "CDS_EVALUATION_TIME": "2026-11-01T12:00:00Z",
        "CDS_PUBLIC_BASE_URL": "https://cds.example.org/",
        "CDS_LOG_LEVEL": "debug",
        "CDS_SHADOW_SERVICES": "b12-order-sign,b12-order-select",
        "CDS_THRESHOLD_OVERRIDES": "mma.uln=0.36",
        "CDS_SUPPRESSION_DAYS": "mma-testing=10",
        "CDS_PREVIEW_ENABLED": "off",
        "CDS_FHIR_SERVER_ALLOWLIST": "https://ehr.example.org/fhir/",
        "CDS_FETCH_BUDGET_MS": "800",
        "CDS_FETCH_BREAKER_COOLDOWN_S": "5",
        "CDS_AUTH_REQUIRED": "yes",
        "CDS_TRUSTED_ISSUERS": ISSUERS,
        "CDS_JWT_LEEWAY_S": "30",
    })
    assert settings.max_body_bytes == 4096
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.evaluation_time == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert settings.public_base_url == "https://cds.example.org"
    assert settings.log_level == "DEBUG"
    assert settings.shadow_services == frozenset({"b12-order-sign", "b12-order-select"})
    assert dict(settings.threshold_overrides) == {"mma.uln": 0.36}
    assert dict(settings.suppression_days) == {"mma-testing": 10}
    assert settings.preview_enabled is False and settings.preview_on is False
    assert settings.fetch == FetchSettings(allowlist=("https://ehr.example.org/fhir/",), budget_ms=800,
                                           breaker_cooldown_s=5.0)
    assert settings.auth.required and settings.auth.leeway_s == 30
    assert list(settings.auth.issuers) == ["https://ehr.example.org"]


def test_create_app_overrides_take_the_same_names_including_auth(tmp_path):
    from cds_service import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/cds.db", "FETCH_MAX_PAGES": 3,
                      "AUTH_REQUIRED": True, "TRUSTED_ISSUERS": ISSUERS})
    state = app.extensions["b12_cds"]
    assert state.settings.fetch.max_pages == 3 and state.fetcher.settings is state.settings.fetch
    assert state.settings.auth.required


@pytest.mark.parametrize(("environ", "fragment"), [
    ({"CDS_FETCH_MAX_PAGES": "0"}, "CDS_FETCH_MAX_PAGES"),
    ({"CDS_FETCH_BUDGET_MS": "5000"}, "CDS_FETCH_BUDGET_MS: must be between 10 and 2000"),
    ({"CDS_FHIR_SERVER_ALLOWLIST": "ehr.example.org"}, "CDS_FHIR_SERVER_ALLOWLIST"),
    ({"CDS_SUPPRESSION_DAYS": "mma-testing=soon"}, "CDS_SUPPRESSION_DAYS"),
    ({"CDS_PUBLIC_BASE_URL": "cds.example.org"}, "CDS_PUBLIC_BASE_URL"),
    ({"CDS_JWT_LEEWAY_S": "301"}, "CDS_JWT_LEEWAY_S"),
    ({"CDS_ENV": "production", "CDS_CORS_ORIGINS": "https://ehr.example.org"}, "CDS_AUTH_REQUIRED"),
])
def test_a_bad_value_names_its_variable(environ, fragment):
    from cds_service.startup import StartupError

    with pytest.raises(StartupError, match=fragment):
        load_settings(environ=environ)


def test_unknown_override_keys_are_refused():
    with pytest.raises(ConfigError, match="FETCH_BUDGET"):
        load_settings({"FETCH_BUDGET": 100}, environ={})


def test_fetch_settings_are_defined_once():
    from cds_service.fhir import fetch

    assert fetch.FetchSettings is FetchSettings


def test_the_readme_table_lists_exactly_the_variables_settings_read():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| variable | default | meaning |"):]
    table = table[:table.index("\n\n")]
    documented = set(re.findall(r"`(CDS_[A-Z0-9_]+)`", "\n".join(line.split("|")[1] for line in
                                                                   table.splitlines()[2:])))
    read = {f"CDS_{name}" for name in VARIABLES} | set(AUTH_VARIABLES) | CLI_VARIABLES
    assert documented == read
