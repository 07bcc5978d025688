"""Liveness and readiness probes, and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, send_file

from ..app_state import state
from ..config import OPENAPI_FILE
from ..storage.db import database_reachable
from .http_json import json_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. Nothing else, so a slow database never gets a pod killed."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: knowledge loaded and the database answers a real query."""
    s = state()
    checks = {
        "knowledge": bool(s.knowledge.active_entries()),
        "services": len(s.services),
        "database": database_reachable(s.db),
    }
    ready = checks["knowledge"] and checks["services"] > 0 and checks["database"]
    return json_response({"status": "ready" if ready else "not-ready", "checks": checks}, 200 if ready else 503)


@bp.get("/openapi.yaml")
def openapi() -> Response:
    return send_file(OPENAPI_FILE, mimetype="application/yaml")
