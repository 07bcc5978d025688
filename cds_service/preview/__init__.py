"""GET /preview: a page that shows this service's cards the way an EHR renders them.

On by default in development, off in production unless CDS_PREVIEW_ENABLED=true (create_app decides).
Plain HTML/CSS/JS from `static/` (no build step, no external resources: the Content-Security-Policy
below only lets the page talk to this service). The page

- lists the fixture scenarios (GET /preview/api/scenarios) and fetches the CDS Hooks request built
  for one (GET /preview/api/scenarios/<id>), then POSTs it to the real `/cds-services/{id}`;
- POSTs a pasted CDS Hooks request to `/cds-services/{id}` as it is;
- sends a pasted FHIR Bundle + hook to POST /preview/api/evaluate, which builds the request an EHR
  would send (bundle_request.py, same logic as fixtures/build_requests.py) and evaluates it with the
  app's engine, returning both;
- sends pasted JSON to POST /preview/api/check: full R4 validation (fhir.conformance, the same check as
  `b12-cds check`) listing every problem with its path, next to what the service does with each
  resource (read, left out and named, or not read). Off the hot path: the service call never runs it.

Fixture data come from the checkout's `fixtures/` directory (absent from the Docker image: the page
then offers only pasting). Nothing here stores what is pasted.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, send_from_directory

from ..api.http_json import json_response, read_json_body
from ..api.services import public_base_url
from ..app_state import state
from ..config import PROJECT_DIR
from ..engine import Engine
from ..errors import BadRequest, ServiceError
from ..fhir.conformance import check_document
from ..protocol.request import parse_hook_request
from ..protocol.services import ServiceDefinition
from .bundle_request import build_request, bundle_resources, split_draft_orders

STATIC_DIR = Path(__file__).resolve().parent / "static"
FIXTURES_DIR = PROJECT_DIR / "fixtures"

bp = Blueprint("preview", __name__, url_prefix="/preview", static_folder="static", static_url_path="/static")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@bp.get("/")
def page() -> Response:
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html")


# --- fixtures ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _scenarios() -> tuple[dict[str, Any], ...]:
    path = FIXTURES_DIR / "scenarios.json"
    if not path.is_file():
        return ()
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def scenario_id(scenario: dict[str, Any]) -> str:
    return f"{scenario['patient']}.{scenario['hook']}"


def _service_for_hook(hook: Any) -> ServiceDefinition:
    services = [s for s in state().services.values() if s.hook == hook]
    if not services:
        known = sorted({s.hook for s in state().services.values()})
        raise BadRequest(f"no service handles hook '{hook}' (this service handles: {', '.join(known)})", ("hook",))
    return services[0]


@bp.get("/api/scenarios")
def scenarios() -> Response:
    hooks = {s.hook: s.id for s in state().services.values()}
    listed = [
        {
            "id": scenario_id(s),
            "patient": s["patient"],
            "hook": s["hook"],
            "serviceId": hooks[s["hook"]],
            "description": s.get("description", ""),
            "expect": [{"topic": e["topic"], "indicator": e["indicator"]} for e in s.get("expect", [])],
        }
        for s in _scenarios()
        if s["hook"] in hooks
    ]
    return json_response({"fixturesAvailable": bool(_scenarios()), "scenarios": listed})


@bp.get("/api/scenarios/<sid>")
def scenario_request(sid: str) -> Response:
    matches = [s for s in _scenarios() if scenario_id(s) == sid]
    if not matches:
        raise ServiceError(f"no fixture scenario '{sid}'; see GET /preview/api/scenarios", 404, "not-found")
    scenario = matches[0]
    service = _service_for_hook(scenario["hook"])
    bundle = json.loads((FIXTURES_DIR / "patients" / f"{scenario['patient']}.json").read_text(encoding="utf-8"))
    resources = [e["resource"] for e in bundle["entry"]]
    request_body = build_request(resources, service, draft_orders=scenario.get("draftOrders", ()),
                                 selections=scenario.get("selections"))
    return json_response({"serviceId": service.id, "request": request_body})


# --- pasted Bundle -------------------------------------------------------------------------------

@bp.post("/api/evaluate")
def evaluate() -> Response:
    """{bundle, hook[, draftOrders, selections]} -> {serviceId, request, status, response}.

    A malformed Bundle answers 400 here. Otherwise the built request is evaluated as
    POST /cds-services/{id} would evaluate it (no fetching: the prefetch is complete), and
    `status`/`response` are what that call answers, including its errors (400, 412) as OperationOutcomes.
    Unlike that call, nothing is recorded and nothing suppressed (no card gate), and no metrics count it.
    """
    body = read_json_body()
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object {bundle, hook}")
    service = _service_for_hook(body.get("hook"))
    resources = bundle_resources(body.get("bundle"))
    draft_orders = body.get("draftOrders")
    if draft_orders is None:
        resources, draft_orders = split_draft_orders(resources) if service.hook != "patient-view" else (resources, [])
    elif not isinstance(draft_orders, list):
        raise BadRequest("draftOrders must be a list of FHIR resources", ("draftOrders",))
    selections = body.get("selections")
    if selections is not None and not (isinstance(selections, list) and all(isinstance(s, str) for s in selections)):
        raise BadRequest("selections must be a list of references such as 'MedicationRequest/x'", ("selections",))
    request_body = build_request(resources, service, draft_orders=draft_orders, selections=selections,
                                 hook_instance=str(uuid.uuid4()))
    engine = state().engine
    # Without the card gate (like the evaluate CLI): a preview neither suppresses nor records issued cards.
    preview_engine = Engine(engine.kb, engine.clock, engine.max_prefetch_entries)
    try:
        evaluation = preview_engine.evaluate(service, parse_hook_request(request_body, service.hook),
                                             base_url=public_base_url())
        status, response = 200, evaluation.response
    except ServiceError as exc:
        status, response = exc.status, exc.outcome()
    return json_response({"serviceId": service.id, "request": request_body, "status": status, "response": response})


# --- full R4 check -------------------------------------------------------------------------------

@bp.post("/api/check")
def check() -> Response:
    """A CDS Hooks request, a Bundle or one resource -> the R4 check report (paths, never values)."""
    body = read_json_body()
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object: a CDS Hooks request, a FHIR Bundle or a FHIR resource")
    return json_response(check_document(body, state().knowledge).as_dict())
