"""GET /explain/<family>: the reasoning behind a card family, as HTML and as JSON.

Every card links here (cards/builder.py) so the card itself can stay short: a safety officer or a
curious clinician finds the rule in plain words, every threshold it applies (value, unit, status tag
V/S/design, source), the site overrides in force and the knowledge version, and the guidelines with
working links. The page is built only from knowledge (knowledge/families.json, thresholds.json,
citations.json) and configuration, never from a request's data, so it holds no patient data and
needs no client JWT (security/middleware.py exempts /explain).

Forms: `/explain/<family>` is HTML (JSON when the client asks for application/json first);
`/explain/<family>.json` is always JSON; `/explain` lists the families.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, render_template, request

from .. import __version__
from ..app_state import state
from ..errors import ServiceError
from ..knowledge import Knowledge
from .http_json import json_response

bp = Blueprint("explain", __name__, url_prefix="/explain", template_folder="templates",
               static_folder="static", static_url_path="/static")

DESIGN_CITATION = "design-convention"  # a local choice, not a guideline: shown as a status, never a link
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"


class UnknownFamily(ServiceError):
    def __init__(self, family: str) -> None:
        super().__init__(f"no rule family '{family}'; see GET /explain", 404, "not-found")


def _number(value: float) -> str:
    return f"{value:g}"


def _value_text(kb: Knowledge, value: float, unit: str) -> str:
    if unit == "{flag}":
        return "on" if value else "off"
    return f"{_number(value)} {kb.unit_display.name(unit)}"


def _citation(kb: Knowledge, cid: str) -> dict[str, Any]:
    c = kb.citations[cid]
    return {"id": c.id, "label": c.label, "url": c.url, "status": c.status, "note": c.note}


def explanation(kb: Knowledge, family: str) -> dict[str, Any]:
    """The page's content as data (the JSON form; the HTML form renders exactly this)."""
    entry = kb.families.get(family)
    if entry is None:
        raise UnknownFamily(family)
    tags = kb.wording.status_tags
    thresholds = []
    guideline_ids: list[str] = list(entry.citations)
    for key in entry.thresholds:
        t = kb.threshold(key)
        default = kb.site_overrides.get(key)
        source_id = default.citation if default is not None else t.citation
        if source_id != DESIGN_CITATION:
            guideline_ids.append(source_id)
        thresholds.append({
            "key": key,
            "description": kb.unit_display.rewrite(t.description),
            "value": t.value,
            "unit": t.unit,
            "unitDisplay": kb.unit_display.name(t.unit),
            "valueDisplay": _value_text(kb, t.value, t.unit),
            "status": t.status,
            "statusText": tags.get(t.status, t.status),
            "citation": _citation(kb, t.citation),
            "source": kb.unit_display.rewrite(t.source),
            "siteOverride": None if default is None else {
                "defaultValue": default.value,
                "defaultDisplay": _value_text(kb, default.value, default.unit),
                "defaultStatus": default.status,
                "defaultCitation": _citation(kb, default.citation),
            },
        })
    guidelines = [_citation(kb, cid) for cid in dict.fromkeys(guideline_ids) if cid != DESIGN_CITATION]
    used = set(entry.thresholds)
    overrides = [
        {"key": key, "valueDisplay": _value_text(kb, kb.threshold(key).value, kb.threshold(key).unit),
         "defaultDisplay": _value_text(kb, default.value, default.unit), "usedByThisFamily": key in used}
        for key, default in sorted(kb.site_overrides.items())
    ]
    return {
        "family": entry.code,
        "title": entry.title,
        "rule": list(entry.rule),
        "thresholds": thresholds,
        "siteOverrides": overrides,
        "guidelines": guidelines,
        "statusTags": dict(tags),
        "knowledgeVersion": kb.version,
        "serviceVersion": __version__,
    }


def _index(kb: Knowledge) -> dict[str, Any]:
    families = [{"family": f.code, "title": f.title, "url": f"/explain/{f.code}"} for f in kb.families.values()]
    return {"families": families, "knowledgeVersion": kb.version, "serviceVersion": __version__}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Vary"] = "Accept"
    return response


def _html(template: str, **context: Mapping[str, Any] | Any) -> Response:
    return _headers(Response(render_template(template, **context), mimetype="text/html"))


@bp.get("")
@bp.get("/")
def index() -> Response:
    data = _index(state().knowledge)
    if _wants_json():
        return _headers(json_response(data))
    return _html("explain_index.html", data=data)


@bp.get("/<name>")
def family_page(name: str) -> Response:
    kb = state().knowledge
    if name.endswith(".json"):
        return _headers(json_response(explanation(kb, name.removesuffix(".json"))))
    data = explanation(kb, name)
    if _wants_json():
        return _headers(json_response(data))
    return _html("explain.html", data=data)
