"""b12-neuro-cds: a CDS Hooks 2.0 service for vitamin B12 neurological safety."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

__version__ = "0.1.0"

log = logging.getLogger("cds_service")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """App factory: load and validate settings, knowledge and service files once, then serve.

    `config` keys are the CDS_* variable names without the prefix (e.g. {"DATABASE_URL": ...});
    anything invalid raises at start-up with a message naming the variable, file or field.
    """
    from . import metrics
    from .alerting import SuppressionPolicy
    from .api import discovery, explain, health, services
    from .api.errors import register_error_handlers
    from .api.middleware import install_middleware
    from .app_state import AppState, set_state
    from .card_gate import CardGate
    from .clinical.rules import FAMILIES
    from .config import ConfigError, load_settings
    from .engine import Engine, system_clock
    from .fhir.fetch import FetchSettings, FhirFetcher
    from .knowledge import KnowledgeError, load_knowledge
    from .logging_setup import configure_logging
    from .protocol.services import load_service_definitions
    from .security import auth_enabled, auth_environ, install_jwt_auth
    from .storage.db import make_engine

    auth_env, config = auth_environ(config, os.environ)
    settings = load_settings(config)
    configure_logging(settings.log_level)
    overrides = settings.threshold_override_values()
    try:
        kb = load_knowledge(Path(settings.knowledge_dir) if settings.knowledge_dir else None,
                            threshold_overrides=overrides or None)
    except KnowledgeError as exc:
        if overrides and "threshold_overrides" in str(exc):
            raise ConfigError(f"CDS_THRESHOLD_OVERRIDES: {exc}") from None
        raise
    service_defs = load_service_definitions(Path(settings.hooks_dir), FAMILIES)
    explain.check_families_documented(kb, FAMILIES)  # every card links to its family's /explain page
    unknown_shadow = settings.shadow_service_ids() - set(service_defs)
    if unknown_shadow:
        raise ConfigError(f"CDS_SHADOW_SERVICES: unknown service id(s) {', '.join(sorted(unknown_shadow))}")
    policy = SuppressionPolicy.parse(settings.suppression_days, list(FAMILIES))
    db = make_engine(settings.database_url)
    pinned = settings.pinned_time()
    clock = (lambda: pinned) if pinned else system_clock

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing
    app.debug = settings.debug
    set_state(
        app,
        AppState(
            settings=settings,
            knowledge=kb,
            services=service_defs,
            engine=Engine(kb, clock, settings.max_prefetch_entries,
                          gate=CardGate(db, policy, settings.shadow_service_ids()),
                          validate_responses=settings.testing or settings.log_level.upper() == "DEBUG"),
            db=db,
            fetcher=FhirFetcher(
                FetchSettings(
                    allowlist=settings.allowlist_entries(),
                    budget_ms=settings.fetch_budget_ms,
                    call_timeout_ms=settings.fetch_call_timeout_ms,
                    max_pages=settings.fetch_max_pages,
                    max_entries=settings.fetch_max_entries,
                    max_response_bytes=settings.fetch_max_response_bytes,
                    breaker_failures=settings.fetch_breaker_failures,
                    breaker_cooldown_s=settings.fetch_breaker_cooldown_s,
                )
            ),
        ),
    )
    install_middleware(app, settings.cors_origins)
    install_jwt_auth(app, auth_env, app.extensions["b12_cds"].db, settings.public_base_url)
    if settings.is_production and not auth_enabled(app):
        raise ConfigError("CDS_AUTH_REQUIRED: production refuses to start without client JWT verification "
                          "and trusted issuers (CDS_TRUSTED_ISSUERS or CDS_TRUSTED_ISSUERS_FILE)")
    register_error_handlers(app)
    for blueprint in (discovery.bp, services.bp, health.bp, metrics.bp, explain.bp):
        app.register_blueprint(blueprint)
    if settings.preview_on:
        from .preview import bp as preview_bp

        app.register_blueprint(preview_bp)
    if not settings.testing:
        from .warmup import warm_up

        warm_up(kb, app.extensions["b12_cds"].engine, service_defs)  # before gunicorn forks its workers
    log.info("service started", extra={"fields": {"env": settings.env, "services": sorted(service_defs)}})
    if pinned:
        log.warning("evaluation time pinned by CDS_EVALUATION_TIME (test/demo only)")
    return app
