"""b12-neuro-cds: a CDS Hooks 2.0 service for vitamin B12 neurological safety."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

__version__ = "0.1.0"

log = logging.getLogger("cds_service")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """App factory: load and validate settings, knowledge and service files once, then serve.

    `config` keys are the CDS_* variable names without the prefix (e.g. {"DATABASE_URL": ...});
    anything invalid raises a `StartupError` (cds_service/startup.py) with a one-line message naming
    the variable, or the file and the field.
    """
    from . import metrics
    from .alerting import SuppressionPolicy
    from .api import discovery, explain, health, services
    from .api.errors import register_error_handlers
    from .api.middleware import install_middleware
    from .app_state import AppState, set_state
    from .card_gate import CardGate
    from .clinical.rules import FAMILIES
    from .config import load_settings
    from .engine import Engine, system_clock
    from .fhir.fetch import FhirFetcher
    from .loading import load_all
    from .logging_setup import configure_logging
    from .security import install_jwt_auth
    from .storage.db import make_engine

    settings = load_settings(config)
    configure_logging(settings.log_level)
    loaded = load_all(settings)  # every file, cross-checked, once (cds_service/loading.py)
    kb, service_defs = loaded.knowledge, loaded.services
    policy = SuppressionPolicy.over_defaults(settings.suppression_days, list(FAMILIES))
    db = make_engine(settings.database_url)
    pinned = settings.evaluation_time
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
                          gate=CardGate(db, policy, settings.shadow_services),
                          validate_responses=settings.testing or settings.debug or settings.log_level == "DEBUG"),
            db=db,
            fetcher=FhirFetcher(settings.fetch),
        ),
    )
    install_middleware(app, settings.cors_origins)
    install_jwt_auth(app, settings.auth, app.extensions["b12_cds"].db, settings.public_base_url)
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
