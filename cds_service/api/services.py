"""POST /cds-services/{id} and /feedback: look up, validate, delegate, log outcomes (no PHI)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from .. import metrics
from ..app_state import state
from ..errors import UnknownService
from ..protocol.feedback import parse_feedback
from ..protocol.request import parse_hook_request
from ..protocol.services import ServiceDefinition
from ..storage.feedback_store import store_feedback
from .http_json import json_response, read_json_body

bp = Blueprint("services", __name__)
log = logging.getLogger("cds_service.api")


def _service(service_id: str) -> ServiceDefinition:
    service = state().services.get(service_id)
    if service is None:
        raise UnknownService(service_id)
    return service


def public_base_url() -> str:
    """Where clients reach this service: CDS_PUBLIC_BASE_URL (behind a proxy), else the request's own."""
    return state().settings.public_base_url.rstrip("/") or request.url_root.rstrip("/")


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    service = _service(service_id)
    g.service_id = service.id
    hook_request = parse_hook_request(read_json_body(), service.hook)
    g.hook = hook_request.hook
    g.hook_instance = hook_request.hook_instance
    fetcher = state().fetcher.for_request(
        hook_request.fhir_server, hook_request.fhir_authorization, hook_request.context
    )
    evaluation = state().engine.evaluate(service, hook_request, fetcher, base_url=public_base_url())
    cards = evaluation.response["cards"]
    metrics.record_cards(cards)
    metrics.record_read(evaluation.read)
    for family in evaluation.suppressed:
        metrics.record_suppressed(family)
    log.info(
        "service evaluated",
        extra={
            "fields": {
                "request_id": g.get("request_id"),
                "service_id": service.id,
                "hook": hook_request.hook,
                "hook_instance": hook_request.hook_instance,
                "cards": len(cards),
                "topics": [c["source"].get("topic", {}).get("code") for c in cards],
                "indicators": [c["indicator"] for c in cards],
                "unavailable_inputs": list(evaluation.record.unavailable_inputs),
                "ignored_fields": list(hook_request.ignored_fields),
                "unreadable": evaluation.read.unreadable,
                "skipped": evaluation.read.skipped,
                "tolerated": len(evaluation.read.tolerated),
                "withheld": list(evaluation.read.withheld),
                "timings_ms": {k: round(v, 3) for k, v in evaluation.timings_ms.items()},
            }
        },
    )
    return json_response(evaluation.response)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = _service(service_id)
    g.service_id = service.id
    items = parse_feedback(read_json_body())
    new = store_feedback(state().db, service.id, items)
    log.info(
        "feedback stored",
        extra={"fields": {"request_id": g.get("request_id"), "service_id": service.id,
                          "feedback_items": len(items), "feedback_new": new}},
    )
    return json_response({"stored": new, "received": len(items)})
