"""GET /cds-services: the service catalogue built from hooks/*.json."""

from __future__ import annotations

from flask import Blueprint, Response

from ..app_state import state
from .http_json import json_response

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    services = state().services.values()
    return json_response({"services": [s.descriptor() for s in services]})
